package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/briskhq/brisk/internal/chaos"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/payment"
	"github.com/briskhq/brisk/internal/postgres"
	"github.com/briskhq/brisk/internal/sqlite"
)

// chaosFlags configure `brisk chaos run`.
type chaosFlags struct {
	dir, pgAdmin, redis, bin, logLevel string
	scale                              float64
	products                           int
	pendingAfter, reconcile            time.Duration
	breakerOpenFor                     time.Duration
}

func (f *chaosFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", "chaos", "directory of the experiment files (*.yaml)")
	fs.StringVar(&f.pgAdmin, "pg-admin", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL URL of a role that may create databases; each experiment gets a fresh database, dropped after")
	fs.StringVar(&f.redis, "redis", "redis://127.0.0.1:6379/0", "Redis URL; each experiment uses its own key prefix")
	fs.StringVar(&f.bin, "bin", "", "brisk binary the API instances run (empty: this program)")
	fs.Float64Var(&f.scale, "scale", 1, "multiply every phase and fault time by this (0.25: a quick run)")
	fs.IntVar(&f.products, "products", 1000, "catalog size of each experiment's database")
	fs.DurationVar(&f.pendingAfter, "pending-after", 2*time.Second, "the API instances' --pending-after")
	fs.DurationVar(&f.reconcile, "reconcile-interval", 250*time.Millisecond, "the API instances' --reconcile-interval")
	fs.DurationVar(&f.breakerOpenFor, "breaker-open-for", 5*time.Second,
		"the API instances' --breaker-open-for, multiplied by --scale (at least 1s) so that quick runs compress every timer alike")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level of the runner: debug, info, warn, error")
}

func runChaos(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "run" && args[0] != "list") {
		fmt.Fprintln(stderr, "usage: brisk chaos list [flags]\n       brisk chaos run [flags] [NAME...]\n\nRuns fault experiments (chaos/*.yaml) against a fresh brisk deployment on\nPostgreSQL + Redis and checks the invariants after each.")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return usageError("chaos: want the subcommand run or list")
	}
	sub := args[0]
	fs := newFlagSet("chaos "+sub, "Runs fault experiments with invariant checks; exits 1 if a hypothesis does not hold.", stderr)
	var f chaosFlags
	f.register(fs)
	flags, names := splitChaosArgs(args[1:])
	if err := parseFlags(fs, flags, getenv); err != nil {
		return err
	}
	all, err := chaos.LoadDir(f.dir)
	if err != nil {
		return usageError("%v", err)
	}
	exps, err := chaos.Select(all, names)
	if err != nil {
		return usageError("%v", err)
	}
	if sub == "list" {
		return chaos.WriteList(stdout, exps)
	}
	if !(f.scale > 0) {
		return usageError("--scale %v: want > 0", f.scale)
	}
	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	if f.bin == "" {
		if f.bin, err = os.Executable(); err != nil {
			return fmt.Errorf("chaos: find this program: %w", err)
		}
	}
	var results []chaos.Result
	for _, e := range exps {
		e = e.Scaled(f.scale)
		fmt.Fprintf(stderr, "chaos: %s: %s\n", e.Name, e.Hypothesis)
		r := runExperiment(ctx, e, &f, log)
		results = append(results, r)
		verdict := "holds"
		if !r.Holds {
			verdict = "REJECTED: " + strings.Join(r.Reasons, "; ")
		}
		fmt.Fprintf(stderr, "chaos: %s: %s\n", e.Name, verdict)
		if ctx.Err() != nil {
			break
		}
	}
	if err := chaos.WriteTable(stdout, results); err != nil {
		return err
	}
	for _, r := range results {
		if !r.Holds {
			return exitError{code: 1, err: errors.New("chaos: a hypothesis did not hold")}
		}
	}
	return nil
}

// splitChaosArgs separates flags (every chaos flag takes a value, as
// "--flag value" or "--flag=value") from experiment names, in any order.
func splitChaosArgs(args []string) (flags, names []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			flags = append(flags, a)
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			names = append(names, a)
		}
	}
	return flags, names
}

// runExperiment starts a fresh stack, runs e on it and tears it down.
func runExperiment(ctx context.Context, e chaos.Experiment, f *chaosFlags, log *slog.Logger) chaos.Result {
	st, err := startChaosStack(ctx, e.Instances, f, log)
	if st != nil {
		defer st.close()
	}
	if err != nil {
		return chaos.Result{Experiment: e, Err: err, Reasons: []string{err.Error()}}
	}
	bound := f.pendingAfter + 4*f.reconcile + 5*time.Second // reconciler bound + a payment call
	return chaos.Run(ctx, e, st, chaos.Options{Products: f.products, PendingBound: bound, Settle: bound, Logger: log})
}

// chaosStack is one experiment's deployment: a fresh PostgreSQL database,
// a Redis key prefix, the payment service in-process, API instances as
// child processes, fault proxies in front of every dependency and a
// balancer in front of the instances. It implements chaos.Env.
type chaosStack struct {
	log     *slog.Logger
	dir     string
	dsn     string // direct, for the snapshot
	drop    func() error
	db      *postgres.DB
	proxies *chaos.Proxies

	payMu    sync.Mutex
	payAddr  string
	payStore *payment.Store
	sim      *payment.Simulator
	stopPay  func()

	apis   []*exec.Cmd
	target string
	lb     *http.Server
}

func startChaosStack(ctx context.Context, instances int, f *chaosFlags, log *slog.Logger) (_ *chaosStack, err error) {
	s := &chaosStack{log: log, proxies: chaos.NewProxies()}
	if s.dir, err = os.MkdirTemp("", "brisk-chaos-"); err != nil {
		return s, fmt.Errorf("chaos: %w", err)
	}
	if s.dsn, s.drop, err = createChaosDatabase(ctx, f.pgAdmin); err != nil {
		return s, err
	}
	var seedOut strings.Builder
	if err := run(ctx, []string{"seed", "--db", s.dsn, "--products", strconv.Itoa(f.products), "--argon2-memory", "64", "--argon2-time", "1"},
		func(string) string { return "" }, &seedOut, &seedOut); err != nil {
		return s, fmt.Errorf("chaos: seed: %w\n%s", err, seedOut.String())
	}
	if s.db, err = postgres.Open(ctx, s.dsn, nil); err != nil {
		return s, fmt.Errorf("chaos: %w", err)
	}

	// Payment service, in-process so that its faults can change and it can
	// be stopped and restarted on the same address.
	if s.payStore, err = payment.Open(filepath.Join(s.dir, "payment.db"), sqlite.SyncNormal); err != nil {
		return s, err
	}
	if s.sim, err = payment.New(s.payStore, payment.Faults{Latency: 5 * time.Millisecond}, log); err != nil {
		return s, err
	}
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.payAddr = ln.Addr().String()
	s.stopPay = startPayment(ln, s.sim, log)

	// Fault proxies.
	pgURL, err := url.Parse(s.dsn)
	if err != nil {
		return s, fmt.Errorf("chaos: database URL: %w", err)
	}
	redisURL, err := url.Parse(f.redis)
	if err != nil || redisURL.Host == "" {
		return s, usageError("--redis %q: want redis://host:port/db", f.redis)
	}
	proxied := map[string]string{}
	for name, up := range map[string]string{
		chaos.TargetPostgres: hostPort(pgURL.Host, "5432"),
		chaos.TargetRedis:    hostPort(redisURL.Host, "6379"),
		chaos.TargetPayment:  s.payAddr,
	} {
		if proxied[name], err = s.proxies.Add(name, up); err != nil {
			return s, err
		}
	}
	pgURL.Host, redisURL.Host = proxied[chaos.TargetPostgres], proxied[chaos.TargetRedis]

	keys := filepath.Join(s.dir, "jwt-keys.json")
	if _, err := loadKeys(keys, slog.New(slog.DiscardHandler)); err != nil {
		return s, err
	}
	prefix := "chaos-" + randomID() + ":"
	var backends []string
	for i := range instances {
		cmd, base, err := startAPIProcess(ctx, f.bin, filepath.Join(s.dir, fmt.Sprintf("api-%d.log", i)),
			"api", "--addr", "127.0.0.1:0", "--db", pgURL.String(), "--redis", redisURL.String(), "--redis-prefix", prefix,
			"--payment-addr", proxied[chaos.TargetPayment], "--jwt-keys", keys, "--argon2-memory", "64", "--argon2-time", "1",
			"--breaker-open-for", max(time.Second, time.Duration(float64(f.breakerOpenFor)*f.scale)).String(),
			"--pending-after", f.pendingAfter.String(), "--reconcile-interval", f.reconcile.String(),
			"--concurrency-limit", "off", "--rate-limit-ip", "off", "--rate-limit-user", "off",
			"--login-limit-ip", "off", "--login-limit-account", "off", "--log-level", "warn")
		if cmd != nil {
			s.apis = append(s.apis, cmd)
		}
		if err != nil {
			return s, err
		}
		backends = append(backends, base)
	}
	lbLn, err := listen("127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.target = "http://" + lbLn.Addr().String()
	s.lb = &http.Server{Handler: chaos.NewBalancer(backends), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.lb.Serve(lbLn) }()
	return s, nil
}

func hostPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, port)
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var apiReady = regexp.MustCompile(`api: (http://\S+)`)

// startAPIProcess runs `bin args...` as a child process (its output goes
// to logFile) and waits until it prints its URL.
func startAPIProcess(ctx context.Context, bin, logFile string, args ...string) (*exec.Cmd, string, error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, "", fmt.Errorf("chaos: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = out
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		out.Close()
		return nil, "", fmt.Errorf("chaos: %w", err)
	}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, "", fmt.Errorf("chaos: start %s: %w", bin, err)
	}
	found := make(chan string, 1)
	go func() {
		defer out.Close()
		sc := bufio.NewScanner(pipe)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(out, sc.Text())
			if m := apiReady.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		close(found)
	}()
	select {
	case base, ok := <-found:
		if ok {
			return cmd, base, nil
		}
		return cmd, "", fmt.Errorf("chaos: API instance exited before it was ready (log: %s)", logFile)
	case <-time.After(30 * time.Second):
		return cmd, "", fmt.Errorf("chaos: API instance not ready after 30s (log: %s)", logFile)
	case <-ctx.Done():
		return cmd, "", ctx.Err()
	}
}

// Target is the balancer's URL.
func (s *chaosStack) Target() string { return s.target }

// Inject applies f: network faults on the proxies, error and latency
// faults on the payment simulator, stop on the payment service, kill on
// an API instance.
func (s *chaosStack) Inject(ctx context.Context, f chaos.Fault) (func(context.Context) error, error) {
	switch f.Kind {
	case chaos.KindErrors, chaos.KindSlow:
		prev := s.sim.Faults()
		next := prev
		if f.Kind == chaos.KindErrors {
			next.ErrorRate = f.Rate
		} else {
			next.Latency, next.Jitter = f.Latency.D(), f.Jitter.D()
		}
		if err := s.sim.SetFaults(next); err != nil {
			return nil, fmt.Errorf("inject %s: %w", f, err)
		}
		return func(context.Context) error { return s.sim.SetFaults(prev) }, nil
	case chaos.KindStop:
		s.payMu.Lock()
		s.stopPay()
		s.stopPay = func() {}
		s.payMu.Unlock()
		return func(context.Context) error {
			s.payMu.Lock()
			defer s.payMu.Unlock()
			ln, err := listen(s.payAddr)
			if err != nil {
				return fmt.Errorf("restart payment service: %w", err)
			}
			s.stopPay = startPayment(ln, s.sim, s.log)
			return nil
		}, nil
	case chaos.KindKill:
		if f.Instance >= len(s.apis) {
			return nil, fmt.Errorf("inject %s: %d instances", f, len(s.apis))
		}
		if err := s.apis[f.Instance].Process.Signal(syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("inject %s: %w", f, err)
		}
		return nil, nil
	}
	return s.proxies.Inject(ctx, f)
}

// Snapshot waits up to settle for every order to leave pending, then
// reads the stock, every order and every charge.
func (s *chaosStack) Snapshot(ctx context.Context, settle time.Duration) (chaos.Snapshot, error) {
	deadline := time.Now().Add(settle)
	for {
		orders, err := s.allOrders(ctx)
		if err != nil {
			return chaos.Snapshot{}, err
		}
		pending := 0
		for _, o := range orders {
			if o.Status == checkout.StatusPending {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Read stock first: an order can only move from pending to final after
	// the wait, and then both readings are of a quiet system.
	stock, err := s.db.Stock(ctx, nil)
	if err != nil {
		return chaos.Snapshot{}, err
	}
	orders, err := s.allOrders(ctx)
	if err != nil {
		return chaos.Snapshot{}, err
	}
	pays, err := s.sim.Payments(ctx)
	if err != nil {
		return chaos.Snapshot{}, err
	}
	charges := make([]chaos.Charge, 0, len(pays))
	for _, p := range pays {
		charges = append(charges, chaos.Charge{ID: p.ID, Key: p.Key, OrderID: p.OrderID, Status: p.Status})
	}
	return chaos.Snapshot{Stock: stock, Orders: orders, Charges: charges, TakenAt: time.Now()}, nil
}

func (s *chaosStack) allOrders(ctx context.Context) ([]checkout.Order, error) {
	var all []checkout.Order
	after := ""
	for {
		page, err := s.db.AllOrders(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// close stops everything and drops the database.
func (s *chaosStack) close() {
	if s.lb != nil {
		_ = s.lb.Close()
	}
	for _, c := range s.apis {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	s.proxies.Close()
	s.payMu.Lock()
	if s.stopPay != nil {
		s.stopPay()
	}
	s.payMu.Unlock()
	if s.payStore != nil {
		_ = s.payStore.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
	if s.drop != nil {
		if err := s.drop(); err != nil {
			s.log.Warn("chaos: drop database", "err", err)
		}
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// createChaosDatabase creates a fresh database with the admin URL's role
// and returns its URL and the function that drops it.
func createChaosDatabase(ctx context.Context, admin string) (string, func() error, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, usageError("--pg-admin: want a postgres:// URL")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("chaos: connect to %s: %w", u.Redacted(), err)
	}
	defer conn.Close(context.Background())
	name := "brisk_chaos_" + randomID()
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("chaos: create database %s: %w", name, err)
	}
	u.Path = "/" + name
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return u.String(), drop, nil
}
