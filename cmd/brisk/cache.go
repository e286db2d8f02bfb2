package main

import (
	"flag"
	"log/slog"
	"net/http"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/briskhq/brisk/internal/cache"
	"github.com/briskhq/brisk/internal/redis"
)

// cacheFlags configure the response cache and compression (brisk api and
// brisk up).
type cacheFlags struct {
	enabled     bool
	mib         int
	productTTL  time.Duration
	listTTL     time.Duration
	staleFor    time.Duration
	beta        float64
	gzipMinSize int
	// wrapL2, when set by the wiring (telemetry), wraps the Redis L2.
	wrapL2 func(cache.L2) cache.L2
}

func (f *cacheFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.enabled, "cache", true, "cache encoded product and listing responses (false: every request reads the store)")
	fs.IntVar(&f.mib, "cache-mib", cache.DefaultMaxBytes>>20, "size of the in-process (L1) cache in MiB")
	fs.DurationVar(&f.productTTL, "cache-product-ttl", cache.DefaultProductTTL, "how long a cached product stays fresh (admin changes invalidate at once; this bounds stale stock counts)")
	fs.DurationVar(&f.listTTL, "cache-list-ttl", cache.DefaultListTTL, "how long a cached listing or search page stays fresh")
	fs.DurationVar(&f.staleFor, "cache-stale-for", cache.DefaultStaleFor, "how long past expiry a cached response is still served while the store fails")
	fs.Float64Var(&f.beta, "cache-beta", cache.DefaultBeta, "XFetch early refresh weight (> 1 refreshes hot keys earlier; 0: no early refresh)")
	fs.IntVar(&f.gzipMinSize, "gzip-min-size", cache.DefaultGzipMinSize, "gzip responses of at least this many bytes (0: no compression)")
}

// newCache returns the response cache, nil when --cache=false. With rc,
// Redis is its L2 and carries its invalidations to the other instances.
func (f *cacheFlags) newCache(rc *redis.Client, reg prometheus.Registerer, log *slog.Logger) (*cache.Cache, error) {
	if !f.enabled {
		return nil, nil
	}
	if f.mib < 1 {
		return nil, usageError("--cache-mib must be at least 1")
	}
	if f.beta < 0 {
		return nil, usageError("--cache-beta must not be negative")
	}
	cfg := cache.Config{
		MaxBytes:   int64(f.mib) << 20,
		ProductTTL: f.productTTL, ListTTL: f.listTTL, StaleFor: f.staleFor,
		Beta: f.beta, DisableEarlyRefresh: f.beta == 0,
		GzipMinSize: f.gzipMinSize,
		Registerer:  reg,
		Logger:      log.With("component", "cache"),
	}
	if f.gzipMinSize <= 0 {
		cfg.GzipMinSize = -1
	}
	if rc != nil {
		cfg.L2, cfg.Bus = redis.NewCache(rc), cache.NewRedisBus(rc, "cache-invalidate")
		if f.wrapL2 != nil {
			cfg.L2 = f.wrapL2(cfg.L2)
		}
	} else {
		log.Info("response cache in process only: without --redis, changes made through other instances reach this one after --cache-product-ttl or --cache-list-ttl")
	}
	return cache.New(cfg)
}

// compress returns the gzip middleware, nil when --gzip-min-size is 0.
// Dynamic responses are compressed at the fastest level: cached ones
// carry a variant compressed once per fill.
func (f *cacheFlags) compress() (func(http.Handler) http.Handler, error) {
	if f.gzipMinSize <= 0 {
		return nil, nil
	}
	return cache.Gzip(f.gzipMinSize, gzip.BestSpeed)
}
