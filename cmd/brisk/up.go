package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/payment"
	"github.com/briskhq/brisk/internal/sqlite"
	"github.com/briskhq/brisk/internal/telemetry"
)

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", level)
	}
	return telemetry.NewLogger(w, l), nil
}

// paymentFlags configure the payment simulator (brisk payment and brisk up).
type paymentFlags struct {
	latency       time.Duration
	jitter        time.Duration
	errorRate     float64
	lostReplyRate float64
	declineRate   float64
}

func (f *paymentFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.latency, "payment-latency", 0, "simulated processor latency per call")
	fs.DurationVar(&f.jitter, "payment-jitter", 0, "uniform jitter (+-) around --payment-latency")
	fs.Float64Var(&f.errorRate, "payment-error-rate", 0, "share of payment calls answered UNAVAILABLE (0..1)")
	fs.Float64Var(&f.lostReplyRate, "payment-lost-reply-rate", 0, "share of payment calls done but answered UNAVAILABLE (0..1)")
	fs.Float64Var(&f.declineRate, "payment-decline-rate", 0, "share of approvable authorizations declined anyway (0..1)")
}

func (f *paymentFlags) faults() payment.Faults {
	return payment.Faults{Latency: f.latency, Jitter: f.jitter, ErrorRate: f.errorRate, LostReplyRate: f.lostReplyRate, DeclineRate: f.declineRate}
}

func (f *accountFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.shopperEmail, "shopper-email", "shopper@brisk.test", "email of the demo shopper account")
	fs.StringVar(&f.shopperPassword, "shopper-password", "", "password of the demo shopper; empty: generated at random and printed")
	fs.StringVar(&f.adminEmail, "admin-email", "admin@brisk.test", "email of the demo admin account")
	fs.StringVar(&f.adminPassword, "admin-password", "", "password of the demo admin; empty: generated at random and printed")
}

// startPayment serves the payment simulator over gRPC on ln until stop is called.
func startPayment(ln net.Listener, sim *payment.Simulator, log *slog.Logger, opts ...grpc.ServerOption) (stop func()) {
	gs := payment.NewServer(sim, log, opts...)
	go func() {
		if err := gs.Serve(ln); err != nil && err != grpc.ErrServerStopped {
			log.Error("payment server", "err", err)
		}
	}()
	return func() {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
	}
}

func runUp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	start := time.Now()
	fs := newFlagSet("up", "Runs the whole system on one machine: the storefront API, the payment service\n"+
		"on loopback gRPC and an embedded SQLite store in --data-dir, created, migrated\nand seeded on first start.", stderr)
	var af apiFlags
	af.register(fs, ":8080")
	var pf paymentFlags
	pf.register(fs)
	var acc accountFlags
	acc.register(fs)
	dataDir := fs.String("data-dir", "brisk-data", "directory of the embedded store, payment records and dev keys")
	var syncMode sqlite.Sync
	fs.Var(&syncMode, "sqlite-sync", syncUsage+" (the store and the payment records)")
	products := fs.Int("products", catalog.DefaultProducts, "products to seed into an empty catalog")
	paymentListen := fs.String("payment-listen", "127.0.0.1:0", "gRPC listen address of the payment service (loopback)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	log, err := parseAndLog(fs, args, getenv, stderr, logLevel)
	if err != nil {
		return err
	}
	obs, err := newObservability(ctx, &af.tel, "brisk", getenv, log)
	if err != nil {
		return err
	}
	defer obs.close()
	af.obs = obs

	b, err := openBackend(ctx, "", *dataDir, syncMode, log)
	if err != nil {
		return err
	}
	defer func() { b.close() }() // b.close grows with useRedis
	if err := b.useRedis(af.redis, af.redisPrefix, log); err != nil {
		return err
	}
	if err := b.migrate(ctx); err != nil {
		return err
	}
	seeded, err := seedCatalog(ctx, b.loader, *products, log)
	if err != nil {
		return err
	}
	accounts, err := ensureAccounts(ctx, b.users, af.argon(), acc, *dataDir)
	if err != nil {
		return err
	}
	if af.jwtKeys == "" {
		af.jwtKeys = filepath.Join(*dataDir, "jwt-keys.json")
	}
	keys, err := loadKeys(af.jwtKeys, log)
	if err != nil {
		return err
	}

	pstore, err := payment.Open(filepath.Join(*dataDir, "payment.db"), syncMode)
	if err != nil {
		return err
	}
	defer pstore.Close()
	sim, err := payment.New(pstore, pf.faults(), log.With("service", "payment"))
	if err != nil {
		return usageError("%v", err)
	}
	pln, err := listen(*paymentListen)
	if err != nil {
		return err
	}
	popts, err := obs.embeddedPaymentOptions(ctx)
	if err != nil {
		return err
	}
	stopPayment := startPayment(pln, sim, log.With("service", "payment"), popts...)
	defer stopPayment()
	conn, err := payment.Dial(pln.Addr().String(), obs.dialOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()

	a := newAPIServer(b, af.edge.payments(conn, log), keys, &af, log)
	ln, err := listen(af.addr)
	if err != nil {
		return err
	}
	url := af.edge.tls.scheme() + "://" + displayAddr(ln.Addr())
	admin, err := obs.serveAdmin(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "brisk is up (ready in %d ms%s)\n", time.Since(start).Milliseconds(), map[bool]string{true: ", catalog seeded", false: ""}[seeded])
	if af.web {
		fmt.Fprintf(stdout, "  store:     %s/\n", url)
		fmt.Fprintf(stdout, "  dashboard: %s/dashboard\n", url)
	}
	fmt.Fprintf(stdout, "  api:       %s\n", url)
	fmt.Fprintf(stdout, "  products:  %s/v1/products?q=oak\n", url)
	fmt.Fprintf(stdout, "  openapi:   %s/openapi.yaml\n", url)
	fmt.Fprintf(stdout, "  payment:   grpc://%s\n", pln.Addr())
	if admin != "" {
		fmt.Fprintf(stdout, "  admin:     http://%s/metrics\n", admin)
	}
	fmt.Fprintf(stdout, "  data dir:  %s\n", *dataDir)
	fmt.Fprintln(stdout, "demo accounts:")
	printAccounts(stdout, accounts)
	fmt.Fprintln(stdout, "Ctrl-C drains in-flight requests and stops.")
	return serveHTTP(ctx, ln, a, &af, log)
}

// displayAddr turns a listener address into one a browser can open
// ("[::]:8080" -> "localhost:8080").
func displayAddr(a net.Addr) string {
	s := a.String()
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + port
}
