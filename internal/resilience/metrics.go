package resilience

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the edge's rejections. A nil *Metrics counts nothing.
type Metrics struct {
	limited *prometheus.CounterVec // policy
	shed    *prometheus.CounterVec // class
}

// NewMetrics registers brisk_rate_limited_total{policy} and
// brisk_shed_total{class} on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brisk_rate_limited_total",
			Help: "Requests answered 429 by a rate limit, by policy.",
		}, []string{"policy"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brisk_shed_total",
			Help: "Requests answered 503 by the concurrency limit, by priority class.",
		}, []string{"class"}),
	}
	for _, c := range []*prometheus.CounterVec{m.limited, m.shed} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) rateLimited(policy string) {
	if m != nil {
		m.limited.WithLabelValues(policy).Inc()
	}
}

func (m *Metrics) shedOne(c Class) {
	if m != nil {
		m.shed.WithLabelValues(c.String()).Inc()
	}
}
