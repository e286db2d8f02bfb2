package chaos

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer echoes lines back until the listener closes.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(l)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line on a new connection and times the echo.
func roundTrip(addr string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func TestProxiesFaults(t *testing.T) {
	p := NewProxies()
	defer p.Close()
	addr, err := p.Add("redis", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(addr); err != nil || d > 150*time.Millisecond {
		t.Fatalf("healthy round trip: %v, %v", d, err)
	}
	ctx := t.Context()

	undo, err := p.Inject(ctx, Fault{Target: "redis", Kind: KindLatency, Latency: Duration(200 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(addr); err != nil || d < 200*time.Millisecond {
		t.Errorf("round trip with 200ms latency: %v, %v", d, err)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(addr); err != nil || d > 150*time.Millisecond {
		t.Errorf("round trip after the latency: %v, %v", d, err)
	}

	for _, kind := range []string{KindDown, KindReset} {
		undo, err := p.Inject(ctx, Fault{Target: "redis", Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := roundTrip(addr); err == nil {
			t.Errorf("%s: round trip succeeded", kind)
		}
		if err := undo(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := roundTrip(addr); err != nil {
			t.Errorf("after %s: %v", kind, err)
		}
	}
	if _, err := p.Inject(ctx, Fault{Target: "nope", Kind: KindDown}); err == nil {
		t.Error("fault on an unknown proxy was accepted")
	}
}
