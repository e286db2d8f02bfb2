package main

import (
	"context"
	"fmt"
	"io"

	"github.com/briskhq/brisk/internal/payment"
	"github.com/briskhq/brisk/internal/sqlite"
)

func runAPI(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("api", "Runs the storefront API alone (stateless; run several behind a load balancer).\n"+
		"It needs a database (--db) and a payment service (--payment-addr).", stderr)
	var af apiFlags
	af.register(fs, ":8080")
	db := fs.String("db", "", "database: postgres://... URL, or sqlite:PATH (empty: sqlite in --data-dir)")
	dataDir := fs.String("data-dir", "brisk-data", "directory of the embedded store when --db is empty")
	var syncMode sqlite.Sync
	fs.Var(&syncMode, "sqlite-sync", syncUsage)
	paymentAddr := fs.String("payment-addr", "127.0.0.1:9090", "gRPC address of the payment service")
	migrate := fs.Bool("migrate", false, "apply database migrations at start")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	log, err := parseAndLog(fs, args, getenv, stderr, logLevel)
	if err != nil {
		return err
	}
	obs, err := newObservability(ctx, &af.tel, "brisk-api", getenv, log)
	if err != nil {
		return err
	}
	defer obs.close()
	af.obs = obs
	b, err := openBackend(ctx, *db, *dataDir, syncMode, log)
	if err != nil {
		return err
	}
	defer func() { b.close() }() // b.close grows with useRedis
	if err := b.useRedis(af.redis, af.redisPrefix, log); err != nil {
		return err
	}
	if *migrate {
		if err := b.migrate(ctx); err != nil {
			return err
		}
	}
	keys, err := loadKeys(af.jwtKeys, log)
	if err != nil {
		return err
	}
	conn, err := payment.Dial(*paymentAddr, obs.dialOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()
	a := newAPIServer(b, af.edge.payments(conn, log), keys, &af, log)
	ln, err := listen(af.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "api: %s://%s\n", af.edge.tls.scheme(), displayAddr(ln.Addr()))
	if admin, err := obs.serveAdmin(ctx); err != nil {
		return err
	} else if admin != "" {
		fmt.Fprintf(stdout, "admin: http://%s/metrics\n", admin)
	}
	return serveHTTP(ctx, ln, a, &af, log)
}

func runPayment(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("payment", "Runs the payment service (a simulated card processor) over gRPC.", stderr)
	var pf paymentFlags
	pf.register(fs)
	addr := fs.String("listen", "127.0.0.1:9090", "gRPC listen address")
	data := fs.String("data", "", "SQLite file that keeps payments across restarts (empty: in memory)")
	var syncMode sqlite.Sync
	fs.Var(&syncMode, "sqlite-sync", syncUsage)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	var tf telemetryFlags
	tf.register(fs)
	log, err := parseAndLog(fs, args, getenv, stderr, logLevel)
	if err != nil {
		return err
	}
	obs, err := newObservability(ctx, &tf, "brisk-payment", getenv, log)
	if err != nil {
		return err
	}
	defer obs.close()
	store, err := payment.Open(*data, syncMode)
	if err != nil {
		return err
	}
	defer store.Close()
	sim, err := payment.New(store, pf.faults(), log)
	if err != nil {
		return usageError("%v", err)
	}
	ln, err := listen(*addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "payment: grpc://%s\n", ln.Addr())
	if admin, err := obs.serveAdmin(ctx); err != nil {
		return err
	} else if admin != "" {
		fmt.Fprintf(stdout, "admin: http://%s/metrics\n", admin)
	}
	stop := startPayment(ln, sim, log, obs.serverOptions()...)
	<-ctx.Done()
	stop()
	return nil
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Creates or upgrades the database schema.", stderr)
	db := fs.String("db", "", "database: postgres://... URL, or sqlite:PATH (empty: sqlite in --data-dir)")
	dataDir := fs.String("data-dir", "brisk-data", "directory of the embedded store when --db is empty")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, _ := newLogger(stderr, "info")
	b, err := openBackend(ctx, *db, *dataDir, sqlite.SyncNormal, log)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s schema is up to date\n", b.name)
	return nil
}

func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("seed", "Loads the deterministic demo catalog (if the catalog is empty) and the demo accounts.", stderr)
	db := fs.String("db", "", "database: postgres://... URL, or sqlite:PATH (empty: sqlite in --data-dir)")
	dataDir := fs.String("data-dir", "brisk-data", "directory of the embedded store when --db is empty")
	products := fs.Int("products", 10_000, "number of products to generate")
	var acc accountFlags
	acc.register(fs)
	var af apiFlags
	fs.UintVar(&af.argonMemoryKiB, "argon2-memory", 19*1024, "argon2id memory cost in KiB")
	fs.UintVar(&af.argonTime, "argon2-time", 2, "argon2id passes")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *products < 1 || *products > 10_000_000 {
		return usageError("--products must be from 1 to 10000000")
	}
	log, _ := newLogger(stderr, "info")
	b, err := openBackend(ctx, *db, *dataDir, sqlite.SyncNormal, log)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.migrate(ctx); err != nil {
		return err
	}
	seeded, err := seedCatalog(ctx, b.loader, *products, log)
	if err != nil {
		return err
	}
	saveDir := ""
	if *db == "" {
		saveDir = *dataDir
	}
	accounts, err := ensureAccounts(ctx, b.users, af.argon(), acc, saveDir)
	if err != nil {
		return err
	}
	if seeded {
		fmt.Fprintf(stdout, "seeded %d products\n", *products)
	} else {
		fmt.Fprintln(stdout, "catalog already has products; left as it is")
	}
	fmt.Fprintln(stdout, "demo accounts:")
	printAccounts(stdout, accounts)
	return nil
}
