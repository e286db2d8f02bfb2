package payment

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkAuthorize measures one Authorize round trip through the client,
// loopback gRPC and the simulator: a new key each time (a charge stored in
// memory or in SQLite) and a replay of one key.
func BenchmarkAuthorize(b *testing.B) {
	for _, bc := range []struct {
		name   string
		store  string
		replay bool
	}{
		{"new/memory", "memory", false},
		{"new/sqlite", "sqlite", false},
		{"replay/memory", "memory", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sim := newSim(b, openStore(b, bc.store), Faults{})
			c, _ := startPayment(b, sim, ClientConfig{})
			ctx := b.Context()
			if _, err := c.Authorize(ctx, auth("warm", TokenVisa, 100)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := "warm"
				if !bc.replay {
					key = strconv.Itoa(i)
					i++
				}
				if _, err := c.Authorize(ctx, auth(key, TokenVisa, 100)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthorizeParallel measures Authorize throughput with concurrent
// callers sharing one connection, new keys, in-memory store.
func BenchmarkAuthorizeParallel(b *testing.B) {
	sim := newSim(b, openStore(b, "memory"), Faults{})
	c, _ := startPayment(b, sim, ClientConfig{})
	ctx := b.Context()
	b.ReportAllocs()
	b.SetParallelism(8)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Authorize(ctx, auth(strconv.FormatInt(next.Add(1), 10), TokenVisa, 100)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
