package telemetry

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/briskhq/brisk/internal/slo"
)

// DBPoolStats is a database connection pool's state, whatever the driver.
type DBPoolStats struct {
	MaxConns, InUse, Idle int
	// Waits counts acquisitions that found no idle connection and waited;
	// WaitTime is their total wait.
	Waits    uint64
	WaitTime time.Duration
}

// SQLPoolStats converts database/sql statistics (the SQLite store).
func SQLPoolStats(s sql.DBStats) DBPoolStats {
	return DBPoolStats{MaxConns: s.MaxOpenConnections, InUse: s.InUse, Idle: s.Idle, Waits: uint64(s.WaitCount), WaitTime: s.WaitDuration}
}

// PgxPoolStats converts pgxpool statistics (the PostgreSQL store).
func PgxPoolStats(s *pgxpool.Stat) DBPoolStats {
	return DBPoolStats{
		MaxConns: int(s.MaxConns()), InUse: int(s.AcquiredConns()), Idle: int(s.IdleConns()),
		Waits: uint64(s.EmptyAcquireCount()), WaitTime: s.EmptyAcquireWaitTime(),
	}
}

// RedisPoolStats is a Redis client's connection pool state.
type RedisPoolStats struct {
	Total, Idle       int
	Hits, Misses      uint64 // idle connection found / not found
	Timeouts, Waits   uint64
	WaitTime          time.Duration
	PendingRequests   int
	StaleConnsRemoved uint64
}

// GoRedisPoolStats converts go-redis pool statistics.
func GoRedisPoolStats(s *goredis.PoolStats) RedisPoolStats {
	return RedisPoolStats{
		Total: int(s.TotalConns), Idle: int(s.IdleConns),
		Hits: uint64(s.Hits), Misses: uint64(s.Misses), Timeouts: uint64(s.Timeouts), Waits: uint64(s.WaitCount),
		WaitTime: time.Duration(s.WaitDurationNs), PendingRequests: int(s.PendingRequests), StaleConnsRemoved: uint64(s.StaleConns),
	}
}

// funcCollector is a collector whose metrics are computed at each scrape.
type funcCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// RegisterDBPool exports a database pool's saturation, read from stats at
// each scrape: brisk_db_pool_connections{pool,state="in_use"|"idle"},
// brisk_db_pool_max_connections, brisk_db_pool_acquire_waits_total and
// brisk_db_pool_acquire_wait_seconds_total.
func (m *Metrics) RegisterDBPool(pool string, stats func() DBPoolStats) error {
	l := prometheus.Labels{"pool": pool}
	conns := prometheus.NewDesc(slo.MetricDBConns, "Connections of the database pool, by state.", []string{"state"}, l)
	maxc := prometheus.NewDesc(slo.MetricDBMaxConns, "Largest number of connections the database pool opens.", nil, l)
	waits := prometheus.NewDesc(slo.MetricDBWaits, "Connection acquisitions that had to wait for a connection.", nil, l)
	wait := prometheus.NewDesc(slo.MetricDBWaitSeconds, "Total time spent waiting for a database connection, in seconds.", nil, l)
	c := funcCollector{descs: []*prometheus.Desc{conns, maxc, waits, wait}, collect: func(ch chan<- prometheus.Metric) {
		s := stats()
		ch <- prometheus.MustNewConstMetric(conns, prometheus.GaugeValue, float64(s.InUse), "in_use")
		ch <- prometheus.MustNewConstMetric(conns, prometheus.GaugeValue, float64(s.Idle), "idle")
		ch <- prometheus.MustNewConstMetric(maxc, prometheus.GaugeValue, float64(s.MaxConns))
		ch <- prometheus.MustNewConstMetric(waits, prometheus.CounterValue, float64(s.Waits))
		ch <- prometheus.MustNewConstMetric(wait, prometheus.CounterValue, s.WaitTime.Seconds())
	}}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("register db pool metrics: %w", err)
	}
	return nil
}

// RegisterRedisPool exports a Redis client pool's saturation, read from
// stats at each scrape: brisk_redis_pool_connections{state}, and
// brisk_redis_pool_timeouts_total, _waits_total, _wait_seconds_total,
// _hits_total, _misses_total, brisk_redis_pool_pending_requests.
func (m *Metrics) RegisterRedisPool(stats func() RedisPoolStats) error {
	conns := prometheus.NewDesc(slo.MetricRedisConns, "Connections of the Redis pool, by state.", []string{"state"}, nil)
	timeouts := prometheus.NewDesc(slo.MetricRedisTimeouts, "Times no Redis connection could be had within the pool timeout.", nil, nil)
	waits := prometheus.NewDesc("brisk_redis_pool_waits_total", "Redis connection acquisitions that had to wait.", nil, nil)
	wait := prometheus.NewDesc("brisk_redis_pool_wait_seconds_total", "Total time spent waiting for a Redis connection, in seconds.", nil, nil)
	hits := prometheus.NewDesc("brisk_redis_pool_hits_total", "Redis connection acquisitions that found an idle connection.", nil, nil)
	misses := prometheus.NewDesc("brisk_redis_pool_misses_total", "Redis connection acquisitions that found no idle connection.", nil, nil)
	pending := prometheus.NewDesc("brisk_redis_pool_pending_requests", "Requests waiting for a Redis connection.", nil, nil)
	c := funcCollector{descs: []*prometheus.Desc{conns, timeouts, waits, wait, hits, misses, pending}, collect: func(ch chan<- prometheus.Metric) {
		s := stats()
		ch <- prometheus.MustNewConstMetric(conns, prometheus.GaugeValue, float64(s.Total-s.Idle), "in_use")
		ch <- prometheus.MustNewConstMetric(conns, prometheus.GaugeValue, float64(s.Idle), "idle")
		ch <- prometheus.MustNewConstMetric(timeouts, prometheus.CounterValue, float64(s.Timeouts))
		ch <- prometheus.MustNewConstMetric(waits, prometheus.CounterValue, float64(s.Waits))
		ch <- prometheus.MustNewConstMetric(wait, prometheus.CounterValue, s.WaitTime.Seconds())
		ch <- prometheus.MustNewConstMetric(hits, prometheus.CounterValue, float64(s.Hits))
		ch <- prometheus.MustNewConstMetric(misses, prometheus.CounterValue, float64(s.Misses))
		ch <- prometheus.MustNewConstMetric(pending, prometheus.GaugeValue, float64(s.PendingRequests))
	}}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("register redis pool metrics: %w", err)
	}
	return nil
}

// Breaker states (the state label of brisk_breaker_state).
var breakerStates = []string{"closed", "half_open", "open"}

// RegisterBreaker exports a circuit breaker's state, read at each scrape
// from state ("closed", "half_open" or "open"): brisk_breaker_state is 1
// for the current state and 0 for the others.
func (m *Metrics) RegisterBreaker(name string, state func() string) error {
	d := prometheus.NewDesc(slo.MetricBreakerState, "Circuit breaker state: 1 for the current one.", []string{"state"}, prometheus.Labels{"breaker": name})
	c := funcCollector{descs: []*prometheus.Desc{d}, collect: func(ch chan<- prometheus.Metric) {
		cur := state()
		for _, s := range breakerStates {
			v := 0.0
			if s == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s)
		}
	}}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("register breaker metrics: %w", err)
	}
	return nil
}
