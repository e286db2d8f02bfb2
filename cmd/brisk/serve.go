package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/briskhq/brisk/api"
	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/cart"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/httpapi"
	"github.com/briskhq/brisk/internal/telemetry"
	"github.com/briskhq/brisk/internal/web"
)

// apiFlags configure the storefront API (brisk api and brisk up).
type apiFlags struct {
	addr              string
	jwtKeys           string
	jwtIssuer         string
	jwtAudience       string
	tokenTTL          time.Duration
	paymentTimeout    time.Duration
	pendingAfter      time.Duration
	reconcileInterval time.Duration
	drainDelay        time.Duration
	shutdownTimeout   time.Duration
	argonMemoryKiB    uint
	argonTime         uint
	redis             string
	redisPrefix       string
	web               bool
	dashboardAuth     bool
	tel               telemetryFlags
	// obs is the process's telemetry, set by the command before
	// newAPIServer; nil: none.
	obs   *observability
	cache cacheFlags
	edge  edgeFlags
}

func (f *apiFlags) register(fs *flag.FlagSet, defaultAddr string) {
	fs.StringVar(&f.addr, "addr", defaultAddr, "HTTP listen address of the storefront API")
	fs.StringVar(&f.jwtKeys, "jwt-keys", "", "JWK set file of Ed25519 private keys (first signs, all verify); empty: generated (dev only)")
	fs.StringVar(&f.jwtIssuer, "jwt-issuer", "brisk", "JWT issuer (iss) issued and required")
	fs.StringVar(&f.jwtAudience, "jwt-audience", "brisk-api", "JWT audience (aud) issued and required")
	fs.DurationVar(&f.tokenTTL, "token-ttl", time.Hour, "lifetime of access tokens")
	fs.DurationVar(&f.paymentTimeout, "payment-timeout", 3*time.Second, "deadline of one payment authorization")
	fs.DurationVar(&f.pendingAfter, "pending-after", 10*time.Second, "age after which the reconciler finishes a pending order")
	fs.DurationVar(&f.reconcileInterval, "reconcile-interval", 2*time.Second, "how often the reconciler looks for pending orders")
	fs.DurationVar(&f.drainDelay, "drain-delay", 0, "on shutdown, time between readiness going false and the listener closing")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 15*time.Second, "on shutdown, how long in-flight requests may take to finish")
	fs.UintVar(&f.argonMemoryKiB, "argon2-memory", 19*1024, "argon2id memory cost in KiB for password hashes")
	fs.UintVar(&f.argonTime, "argon2-time", 2, "argon2id passes for password hashes")
	fs.StringVar(&f.redis, "redis", "", "Redis URL (redis://host:6379/0): carts, shared L2 cache, rate limits, cache invalidation; empty: none")
	fs.StringVar(&f.redisPrefix, "redis-prefix", "brisk:", "prefix of every Redis key and channel (several deployments can share one Redis)")
	fs.BoolVar(&f.web, "web", true, "serve the storefront and the /dashboard on the API's address")
	fs.BoolVar(&f.dashboardAuth, "dashboard-auth", true, "the dashboard's data needs an admin token (false: open to anyone who reaches it)")
	f.tel.register(fs)
	f.cache.register(fs)
	f.edge.register(fs)
}

func (f *apiFlags) argon() auth.Argon2Params {
	return auth.Argon2Params{Memory: uint32(f.argonMemoryKiB), Time: uint32(f.argonTime), Threads: 1}
}

// loadKeys reads the JWT key file; when it is missing, a key is generated
// (and saved to the file if one was named) with a warning: fine for
// development, not for several instances that must share keys.
func loadKeys(path string, log *slog.Logger) (*auth.Keys, error) {
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			return auth.LoadKeys(path)
		}
	}
	k, err := auth.GenerateKey()
	if err != nil {
		return nil, err
	}
	keys, err := auth.NewKeys(k)
	if err != nil {
		return nil, err
	}
	if path == "" {
		log.Warn("no --jwt-keys file: generated an ephemeral signing key; tokens die with this process and other instances cannot verify them")
		return keys, nil
	}
	if err := keys.Save(path); err != nil {
		return nil, err
	}
	log.Warn("generated a new JWT signing key (dev only)", "file", path, "kid", keys.SigningKeyID())
	return keys, nil
}

// apiServer is a wired storefront API with its checkout service.
type apiServer struct {
	http     *httpapi.Server
	checkout *checkout.Service
	web      *web.Handler // nil when --web=false
	cache    *cache.Cache // nil when --cache=false
}

func newAPIServer(b *backend, payments checkout.Payments, keys *auth.Keys, f *apiFlags, log *slog.Logger) *apiServer {
	tokens := &auth.Tokens{Keys: keys, Issuer: f.jwtIssuer, Audience: f.jwtAudience, TTL: f.tokenTTL, Skew: 30 * time.Second}
	f.obs.registerPools(b)
	b = f.obs.traceStores(b)
	gate := paymentGate(payments)
	registerBreaker(f.obs, payments, log)
	payments = f.obs.payments(payments)
	co := checkout.NewService(b.checkout, b.catalog, b.carts, payments, checkout.Config{
		PaymentTimeout: f.paymentTimeout, PendingAfter: f.pendingAfter, PaymentGate: gate,
	}, log)
	var wh *web.Handler
	if f.web {
		wc := web.Config{Catalog: b.catalog, Logger: log}
		if f.obs.enabled() {
			wc.Gatherer, wc.SLO, wc.OnRoute = f.obs.metrics.Gatherer(), f.obs.tracker.Status, telemetry.SetRoute
		}
		if f.dashboardAuth {
			wc.Tokens = tokens
		}
		var err error
		if wh, err = web.New(wc); err != nil {
			log.Error("storefront disabled", "err", err)
		}
	}
	var reg prometheus.Registerer
	if f.obs.enabled() {
		reg = f.obs.metrics.Registerer()
	}
	f.cache.wrapL2 = f.obs.traceCacheL2
	rc, err := f.cache.newCache(b.redis, reg, log)
	if err != nil {
		log.Error("response cache disabled", "err", err)
	}
	gz, err := f.cache.compress()
	if err != nil {
		log.Error("compression disabled", "err", err)
	}
	edge := f.edge.middleware(tokens, b.redis, edgeMetrics(f.obs, log), log)
	h := httpapi.New(httpapi.Deps{
		Catalog:    b.catalog,
		Carts:      &cart.Service{Store: b.carts, Catalog: b.catalog},
		Auth:       &auth.Service{Store: b.users, Tokens: tokens, Argon2: f.argon()},
		Tokens:     tokens,
		Checkout:   co,
		Ready:      b.ping,
		OpenAPI:    api.OpenAPI,
		Logger:     log,
		Web:        webHandler(wh),
		Cache:      rc,
		Compress:   gz,
		Instrument: f.obs.middleware(),
		Ops:        f.obs.opsRoutes(),
		Edge:       edge.handler,
		Hot:        httpapi.Hot{Admit: edge.admit, Telemetry: f.obs.httpTelemetry()},
	})
	if f.obs.enabled() {
		f.obs.http.SetRouter(h.Route)
		f.obs.http.Preload(h.Patterns())
	}
	registerConcurrency(f.obs, edge.concurrency, log)
	return &apiServer{http: h, checkout: co, web: wh, cache: rc}
}

// listen opens the API's listener (":0" picks a free port).
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// serveHTTP serves h on ln until ctx ends, then drains: readiness goes
// false, after drainDelay the listener closes and in-flight requests get
// up to shutdownTimeout (a fresh context) to finish.
func serveHTTP(ctx context.Context, ln net.Listener, a *apiServer, f *apiFlags, log *slog.Logger) error {
	var draining atomic.Bool
	srv := f.edge.server(closeWhenDraining(a.http, &draining), log)
	ln = f.edge.gate(srv, ln, f.obs, log)
	tr, err := f.edge.tls.start(srv, ln, log)
	if err != nil {
		return err
	}
	errc := tr.errc

	rctx, stopReconciler := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReconciler()
	go a.checkout.RunReconciler(rctx, f.reconcileInterval)
	if a.cache != nil {
		defer a.cache.Close()
		go a.cache.Run(rctx)
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining", "drain_delay", f.drainDelay)
	a.http.SetDraining(true)
	draining.Store(true)
	time.Sleep(f.drainDelay)
	if a.web != nil {
		defer a.web.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	tr.shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	log.Info("shut down cleanly")
	return nil
}

// webHandler returns h as an http.Handler, nil (not a typed nil) when h is.
func webHandler(h *web.Handler) http.Handler {
	if h == nil {
		return nil
	}
	return h
}
