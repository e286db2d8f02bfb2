package cache

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// stats are the cache's counters; Stats copies them and the Prometheus
// collectors read them.
type stats struct {
	l1Hits, l1Misses, l2Hits, l2Misses, l2Errors atomic.Uint64
	coalesced, abandoned                         atomic.Uint64
	loads, loadErrors                            atomic.Uint64
	earlyRefreshes, staleServed                  atomic.Uint64
	evictedSize, evictedExpired                  atomic.Uint64
	invalidations, remoteInvalidations           atomic.Uint64
}

// Stats is a snapshot of the cache's counters since it was created.
type Stats struct {
	L1Hits, L1Misses uint64 // an expired entry is a miss
	L2Hits, L2Misses uint64 // asked on L1 misses only
	L2Errors         uint64
	Coalesced        uint64 // callers that waited for another caller's fill
	Abandoned        uint64 // callers whose context ended while they waited
	Loads            uint64 // store loads, failed ones included
	LoadErrors       uint64 // store failures (not NotFound or Invalid answers)
	EarlyRefreshes   uint64 // XFetch refreshes started by a hit
	StaleServed      uint64 // responses served past expiry (stale-if-error)
	EvictedSize      uint64 // L1 entries evicted for space
	EvictedExpired   uint64 // L1 entries removed past their stale window
	Invalidations    uint64 // invalidations made here
	Remote           uint64 // invalidation messages received
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	s := &c.st
	return Stats{
		L1Hits: s.l1Hits.Load(), L1Misses: s.l1Misses.Load(),
		L2Hits: s.l2Hits.Load(), L2Misses: s.l2Misses.Load(), L2Errors: s.l2Errors.Load(),
		Coalesced: s.coalesced.Load(), Abandoned: s.abandoned.Load(),
		Loads: s.loads.Load(), LoadErrors: s.loadErrors.Load(),
		EarlyRefreshes: s.earlyRefreshes.Load(), StaleServed: s.staleServed.Load(),
		EvictedSize: s.evictedSize.Load(), EvictedExpired: s.evictedExpired.Load(),
		Invalidations: s.invalidations.Load(), Remote: s.remoteInvalidations.Load(),
	}
}

// register declares the cache's metrics on reg (nothing when reg is nil):
//
//	brisk_cache_hits_total{layer}            l1, l2
//	brisk_cache_misses_total{layer}          l1, l2
//	brisk_cache_l2_errors_total
//	brisk_cache_coalesced_waits_total
//	brisk_cache_abandoned_waits_total
//	brisk_cache_loads_total{result}          ok, error
//	brisk_cache_load_duration_seconds        histogram
//	brisk_cache_early_refreshes_total
//	brisk_cache_stale_served_total
//	brisk_cache_evictions_total{layer,cause} l1: size, expired
//	brisk_cache_invalidations_total{origin}  local, remote
//	brisk_cache_entries{layer}, brisk_cache_bytes{layer}   l1
func (c *Cache) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	s := &c.st
	counter := func(name, help string, labels prometheus.Labels, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) })
	}
	l1 := prometheus.Labels{"layer": "l1"}
	l2 := prometheus.Labels{"layer": "l2"}
	const (
		hits   = "Cache lookups answered by the layer."
		misses = "Cache lookups the layer could not answer fresh."
		evicts = "Entries the layer removed on its own, by cause."
		invs   = "Cache invalidations, made here (local) or received (remote)."
	)
	c.loadH = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "brisk_cache_load_duration_seconds",
		Help:    "Time of one store load on a cache miss or refresh.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	cs := []prometheus.Collector{
		counter("brisk_cache_hits_total", hits, l1, s.l1Hits.Load),
		counter("brisk_cache_hits_total", hits, l2, s.l2Hits.Load),
		counter("brisk_cache_misses_total", misses, l1, s.l1Misses.Load),
		counter("brisk_cache_misses_total", misses, l2, s.l2Misses.Load),
		counter("brisk_cache_l2_errors_total", "Failed L2 (Redis) calls.", nil, s.l2Errors.Load),
		counter("brisk_cache_coalesced_waits_total", "Misses that waited for a load another request started.", nil, s.coalesced.Load),
		counter("brisk_cache_abandoned_waits_total", "Waits for a load given up because the request's context ended.", nil, s.abandoned.Load),
		counter("brisk_cache_loads_total", "Store loads by the cache.", prometheus.Labels{"result": "ok"},
			func() uint64 { return s.loads.Load() - s.loadErrors.Load() }),
		counter("brisk_cache_loads_total", "Store loads by the cache.", prometheus.Labels{"result": "error"}, s.loadErrors.Load),
		counter("brisk_cache_early_refreshes_total", "Early (XFetch) refreshes of hot entries.", nil, s.earlyRefreshes.Load),
		counter("brisk_cache_stale_served_total", "Responses served stale because the store failed.", nil, s.staleServed.Load),
		counter("brisk_cache_evictions_total", evicts, prometheus.Labels{"layer": "l1", "cause": "size"}, s.evictedSize.Load),
		counter("brisk_cache_evictions_total", evicts, prometheus.Labels{"layer": "l1", "cause": "expired"}, s.evictedExpired.Load),
		counter("brisk_cache_invalidations_total", invs, prometheus.Labels{"origin": "local"}, s.invalidations.Load),
		counter("brisk_cache_invalidations_total", invs, prometheus.Labels{"origin": "remote"}, s.remoteInvalidations.Load),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "brisk_cache_entries", Help: "Entries in the layer.", ConstLabels: l1},
			func() float64 { return float64(c.l1.EstimatedSize()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "brisk_cache_bytes", Help: "Weighted size of the layer in bytes (0 when bounded by entry count).", ConstLabels: l1},
			func() float64 {
				if c.l1.IsWeighted() {
					return float64(c.l1.WeightedSize())
				}
				return 0
			}),
		c.loadH,
	}
	var errs []error
	for _, col := range cs {
		errs = append(errs, reg.Register(col))
	}
	return errors.Join(errs...)
}
