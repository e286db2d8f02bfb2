package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// Proxies are TCP fault proxies (Toxiproxy, in-process) in front of the
// dependencies, one per name.
type Proxies struct {
	srv *toxiproxy.ApiServer
	mu  sync.Mutex
	n   int
}

// NewProxies returns an empty set of proxies.
func NewProxies() *Proxies {
	return &Proxies{srv: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.New(io.Discard))}
}

// Add starts a proxy named name on a free loopback port in front of
// upstream (host:port) and returns the address to dial instead.
func (p *Proxies) Add(name, upstream string) (string, error) {
	px := toxiproxy.NewProxy(p.srv, name, "127.0.0.1:0", upstream)
	if err := p.srv.Collection.Add(px, true); err != nil {
		return "", fmt.Errorf("start proxy %s: %w", name, err)
	}
	return px.Listen, nil
}

// Close stops every proxy.
func (p *Proxies) Close() { _ = p.srv.Collection.Clear() }

// Inject applies a network fault (latency, bandwidth, reset, timeout,
// down) to the proxy named f.Target and returns the function that
// removes it.
func (p *Proxies) Inject(ctx context.Context, f Fault) (undo func(context.Context) error, err error) {
	px, err := p.srv.Collection.Get(f.Target)
	if err != nil {
		return nil, fmt.Errorf("inject %s: %w", f, err)
	}
	if f.Kind == KindDown {
		px.Stop()
		return func(context.Context) error {
			if err := px.Start(); err != nil {
				return fmt.Errorf("restart proxy %s: %w", f.Target, err)
			}
			return nil
		}, nil
	}
	toxicity := f.Toxicity
	if toxicity == 0 {
		toxicity = 1
	}
	var attrs any
	typ := ""
	switch f.Kind {
	case KindLatency:
		typ, attrs = "latency", toxics.LatencyToxic{Latency: f.Latency.D().Milliseconds(), Jitter: f.Jitter.D().Milliseconds()}
	case KindBandwidth:
		typ, attrs = "bandwidth", toxics.BandwidthToxic{Rate: f.RateKB}
	case KindReset:
		typ, attrs = "reset_peer", toxics.ResetToxic{Timeout: 0}
	case KindTimeout:
		typ, attrs = "timeout", toxics.TimeoutToxic{Timeout: 0}
	default:
		return nil, fmt.Errorf("inject %s: not a network fault", f)
	}
	p.mu.Lock()
	p.n++
	// One downstream toxic (server to client): it delays, throttles, resets
	// or swallows what the dependency answers, which is what its clients see.
	names := []string{fmt.Sprintf("%s-%d-downstream", typ, p.n)}
	p.mu.Unlock()
	var undos []func(context.Context) error
	for _, name := range names {
		stream := name[strings.LastIndexByte(name, '-')+1:]
		body, _ := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": toxicity, "attributes": attrs})
		if _, err := px.Toxics.AddToxicJson(strings.NewReader(string(body))); err != nil {
			for _, u := range undos {
				_ = u(ctx)
			}
			return nil, fmt.Errorf("inject %s: %w", f, err)
		}
		undos = append(undos, func(ctx context.Context) error {
			if err := px.Toxics.RemoveToxic(ctx, name); err != nil {
				return fmt.Errorf("remove toxic %s: %w", name, err)
			}
			return nil
		})
	}
	return func(ctx context.Context) error {
		var first error
		for _, u := range undos {
			if err := u(ctx); err != nil && first == nil {
				first = err
			}
		}
		return first
	}, nil
}
