package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/payment"
	"github.com/briskhq/brisk/internal/redis"
	"github.com/briskhq/brisk/internal/resilience"
)

// edgeFlags configure the API's overload protection and hardening: rate
// limits, the adaptive concurrency limit, server timeouts and size
// limits, the payment client's retries and breaker, and TLS.
type edgeFlags struct {
	ipLimit, userLimit              resilience.Limit
	loginIPLimit, loginAccountLimit resilience.Limit
	exempt, trustedProxies          prefixFlag
	concurrency                     concurrencyFlag
	concurrencyMin, concurrencyMax  int

	requestTimeout    time.Duration
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	maxActive         int

	paymentAttemptTimeout time.Duration
	paymentAttempts       int
	breakerOpenFor        time.Duration

	tls tlsFlags
}

func (f *edgeFlags) register(fs *flag.FlagSet) {
	f.ipLimit, _ = resilience.ParseLimit("50/s:100")
	f.userLimit, _ = resilience.ParseLimit("20/s:40")
	f.loginIPLimit, _ = resilience.ParseLimit("20/m:20")
	f.loginAccountLimit, _ = resilience.ParseLimit("10/15m:10")
	_ = f.exempt.Set("127.0.0.0/8,::1")
	f.concurrency = concurrencyFlag{adaptive: true}
	fs.Var(&f.ipLimit, "rate-limit-ip", "API requests per client IP: RATE/PERIOD[:BURST] (e.g. 50/s:100), or off")
	fs.Var(&f.userLimit, "rate-limit-user", "API requests per signed-in user: RATE/PERIOD[:BURST], or off")
	fs.Var(&f.loginIPLimit, "login-limit-ip", "sign-in attempts per client IP (brute force): RATE/PERIOD[:BURST], or off")
	fs.Var(&f.loginAccountLimit, "login-limit-account", "sign-in attempts per account (brute force): RATE/PERIOD[:BURST], or off")
	fs.Var(&f.exempt, "rate-limit-exempt", "client networks never rate limited (CIDRs, comma-separated; none: no exemption)")
	fs.Var(&f.trustedProxies, "trusted-proxies", "proxies (CIDRs) whose X-Forwarded-For names the client (empty: trust none)")
	fs.Var(&f.concurrency, "concurrency-limit", "limit on API requests in flight: adaptive, off, or a fixed number")
	fs.IntVar(&f.concurrencyMin, "concurrency-min", resilience.DefaultConcurrency.MinLimit, "floor of the adaptive concurrency limit")
	fs.IntVar(&f.concurrencyMax, "concurrency-max", resilience.DefaultConcurrency.MaxLimit, "ceiling of the adaptive concurrency limit")
	fs.DurationVar(&f.requestTimeout, "request-timeout", 10*time.Second, "deadline of one API request (store, Redis and gRPC calls honour it); 0: none")
	fs.DurationVar(&f.readHeaderTimeout, "read-header-timeout", 5*time.Second, "time a client has to send a request's headers (cuts off slow clients)")
	fs.DurationVar(&f.readTimeout, "read-timeout", 15*time.Second, "time a client has to send a whole request")
	fs.DurationVar(&f.writeTimeout, "write-timeout", 30*time.Second, "time to write a response, from the end of the request headers")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	fs.IntVar(&f.maxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block accepted (431 above)")
	fs.IntVar(&f.maxActive, "max-active", 16*runtime.GOMAXPROCS(0), "HTTP/1.1 requests read and served at once; more wait, parked, before they are read (0: no limit; not with TLS or h2c)")
	fs.DurationVar(&f.paymentAttemptTimeout, "payment-attempt-timeout", 2*time.Second, "deadline of one payment call attempt (--payment-timeout bounds all attempts)")
	fs.IntVar(&f.paymentAttempts, "payment-attempts", payment.DefaultResilience.MaxAttempts, "attempts per payment call, the first included (retries: unavailable only, budget 10%)")
	fs.DurationVar(&f.breakerOpenFor, "breaker-open-for", payment.DefaultResilience.OpenFor, "how long the payment circuit breaker stays open before trial calls")
	f.tls.register(fs)
}

// server returns the API's http.Server with its timeouts and limits.
func (f *edgeFlags) server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: f.readHeaderTimeout,
		ReadTimeout:       f.readTimeout,
		WriteTimeout:      f.writeTimeout,
		IdleTimeout:       f.idleTimeout,
		MaxHeaderBytes:    f.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// gate puts the server's HTTP/1.1 requests behind a resilience.Gate of
// --max-active places and returns the listener to serve; with TLS or h2c
// (HTTP/2 multiplexes requests on a connection) or --max-active 0, ln.
func (f *edgeFlags) gate(srv *http.Server, ln net.Listener, o *observability, log *slog.Logger) net.Listener {
	if f.maxActive <= 0 {
		return ln
	}
	if f.tls.on() || f.tls.h2c {
		log.Info("--max-active applies to plain HTTP/1.1 only; not used with TLS or h2c")
		return ln
	}
	g := resilience.NewGate(f.maxActive)
	srv.ConnState = g.ConnState
	if o.enabled() {
		if err := registerGate(o, g); err != nil {
			log.Warn("gate metrics", "err", err)
		}
	}
	return g.Listener(ln)
}

// registerGate exports the gate's saturation: places, requests holding
// one, connections waiting, and how many requests had to wait.
func registerGate(o *observability, g *resilience.Gate) error {
	for _, m := range []struct {
		name, help string
		f          func() float64
	}{
		{"brisk_http_gate_places", "Places of the HTTP/1.1 request gate (--max-active).", func() float64 { return float64(g.Size()) }},
		{"brisk_http_gate_active", "Requests holding a place of the gate.", func() float64 { return float64(g.Active()) }},
		{"brisk_http_gate_waiting", "Connections with a request waiting for a place.", func() float64 { return float64(g.Waiting()) }},
	} {
		if err := o.metrics.GaugeFunc(m.name, m.help, m.f); err != nil {
			return err
		}
	}
	return o.metrics.Registerer().Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "brisk_http_gate_waits_total", Help: "Requests that waited for a place of the gate.",
	}, func() float64 { return float64(g.Waits()) }))
}

// payments returns the payment client over conn, with per-attempt
// deadlines, retries and the circuit breaker.
func (f *edgeFlags) payments(conn grpc.ClientConnInterface, log *slog.Logger) *payment.Resilient {
	return payment.NewResilient(payment.NewClient(conn, payment.ClientConfig{Timeout: f.paymentAttemptTimeout}),
		payment.ResilienceConfig{MaxAttempts: f.paymentAttempts, OpenFor: f.breakerOpenFor, Logger: log})
}

// paymentGate returns p's breaker check for checkout.Config.PaymentGate,
// nil when p has none.
func paymentGate(p any) func() error {
	if g, ok := p.(interface{ Ready() error }); ok {
		return g.Ready
	}
	return nil
}

// priority is the class of an API request under overload: checkout and
// admin changes are shed last, browsing first; ops routes never.
func priority(r *http.Request) resilience.Class {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/debug/"):
		return resilience.Exempt
	case strings.HasPrefix(p, "/v1/checkout") || strings.HasPrefix(p, "/v1/admin/"):
		return resilience.Critical
	case strings.HasPrefix(p, "/v1/cart") || strings.HasPrefix(p, "/v1/orders") || strings.HasPrefix(p, "/v1/auth/"):
		return resilience.Interactive
	}
	return resilience.Browse
}

// edge is the API's edge middleware and the parts it exposes.
type edge struct {
	handler     func(http.Handler) http.Handler
	concurrency *resilience.Concurrency // nil when --concurrency-limit=off
	// admit is the edge's work for a request the API answers from its
	// cache without the chain (httpapi.Hot.Admit): security headers and
	// rate limits. A cache hit needs no deadline, and it is not counted
	// against the concurrency limit: it holds nothing and costs less
	// than the 503 that would shed it.
	admit func(http.ResponseWriter, *http.Request) bool
}

// middleware builds the edge: security headers, the request deadline,
// rate limits (in Redis when rc is set, shared by every instance), and
// the concurrency limit, in that order.
func (f *edgeFlags) middleware(tokens *auth.Tokens, rc *redis.Client, m *resilience.Metrics, log *slog.Logger) edge {
	clientIP := resilience.ClientIP(f.trustedProxies.nets)
	api := resilience.PathPrefix("/v1/")
	login := resilience.Route(http.MethodPost, "/v1/auth/login")
	var store resilience.Store = resilience.NewLocal(100_000)
	if rc != nil {
		store = resilience.NewShared(redis.NewLimiter(rc), store)
	}
	limits := resilience.NewRateLimiter(resilience.RateLimitConfig{
		Policies: []resilience.Policy{
			{Name: "login-ip", Limit: f.loginIPLimit, Key: resilience.When(login, resilience.ByIP(clientIP))},
			{Name: "login-account", Limit: f.loginAccountLimit, Key: resilience.When(login, resilience.JSONField("email"))},
			{Name: "ip", Limit: f.ipLimit, Key: resilience.When(api, resilience.ByIP(clientIP))},
			{Name: "user", Limit: f.userLimit, Key: resilience.When(api, resilience.BearerUser(func(tok string) (string, time.Time, error) {
				c, err := tokens.Verify(tok)
				return strconv.FormatInt(c.UserID, 10), c.Expiry, err
			}))},
		},
		Store:   store,
		Exempt:  resilience.ExemptNetworks(clientIP, f.exempt.nets),
		Metrics: m,
		Logger:  log,
	})
	e := edge{admit: func(w http.ResponseWriter, r *http.Request) bool {
		resilience.SetSecurityHeaders(w.Header(), r)
		return limits.Check(w, r)
	}}
	var limit func(http.Handler) http.Handler
	if c := newConcurrency(f.concurrency, resilience.ConcurrencyConfig{
		MinLimit: f.concurrencyMin, MaxLimit: f.concurrencyMax, Classify: priority, Metrics: m, Logger: log,
	}, log); c != nil {
		e.concurrency, limit = c, c.Middleware
	}
	e.handler = resilience.Chain(resilience.SecurityHeaders, resilience.Timeout(f.requestTimeout), limits.Middleware, limit)
	return e
}

// prefixFlag is a comma-separated list of networks.
type prefixFlag struct {
	text string
	nets []netip.Prefix
}

func (p *prefixFlag) String() string { return p.text }

func (p *prefixFlag) Set(s string) error {
	nets, err := resilience.ParsePrefixes(s)
	if err != nil {
		return err
	}
	p.text, p.nets = s, nets
	return nil
}

// newConcurrency returns the limit flag asks for, cfg's limits when
// adaptive, nil when off (or misconfigured: logged).
func newConcurrency(flag concurrencyFlag, cfg resilience.ConcurrencyConfig, log *slog.Logger) *resilience.Concurrency {
	if flag.off {
		return nil
	}
	if !flag.adaptive {
		cfg.MinLimit, cfg.MaxLimit, cfg.InitialLimit = flag.fixed, flag.fixed, flag.fixed
	}
	c, err := resilience.NewConcurrency(cfg)
	if err != nil {
		log.Error("concurrency limit disabled", "err", err)
		return nil
	}
	return c
}

// concurrencyFlag is "adaptive", "off" or a fixed limit.
type concurrencyFlag struct {
	adaptive, off bool
	fixed         int
}

func (c *concurrencyFlag) String() string {
	switch {
	case c.off:
		return "off"
	case c.adaptive:
		return "adaptive"
	}
	return strconv.Itoa(c.fixed)
}

func (c *concurrencyFlag) Set(s string) error {
	switch s {
	case "adaptive":
		*c = concurrencyFlag{adaptive: true}
	case "off", "0":
		*c = concurrencyFlag{off: true}
	default:
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("want adaptive, off or a positive number")
		}
		*c = concurrencyFlag{fixed: n}
	}
	return nil
}

// closeWhenDraining answers with Connection: close once draining is set,
// so that keep-alive clients leave for other instances after their
// current request instead of finding the connection closed under a new
// one (HTTP/2 connections get a GOAWAY; HTTP/3 ones are shut down with
// the server).
func closeWhenDraining(h http.Handler, draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() && r.ProtoMajor < 3 { // HTTP/3 has no connection header
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// edgeMetrics returns the edge's rejection counters on the process's
// registry, nil without metrics.
func edgeMetrics(o *observability, log *slog.Logger) *resilience.Metrics {
	if !o.enabled() {
		return nil
	}
	m, err := resilience.NewMetrics(o.metrics.Registerer())
	if err != nil {
		log.Warn("edge metrics", "err", err)
	}
	return m
}

// registerBreaker exports the payment breaker's state (when p has one).
func registerBreaker(o *observability, p any, log *slog.Logger) {
	b, ok := p.(interface{ State() string })
	if !ok || !o.enabled() {
		return
	}
	if err := o.metrics.RegisterBreaker("payment", b.State); err != nil {
		log.Warn("breaker metrics", "err", err)
	}
}

// registerConcurrency exports the concurrency limit and its use.
func registerConcurrency(o *observability, c *resilience.Concurrency, log *slog.Logger) {
	if c == nil || !o.enabled() {
		return
	}
	err := o.metrics.RegisterConcurrency(
		func() float64 { return float64(c.Limit()) },
		func() float64 { return float64(c.Inflight()) })
	if err != nil {
		log.Warn("concurrency metrics", "err", err)
	}
}
