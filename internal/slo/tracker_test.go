package slo

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// traffic is one minute's checkout requests: total, 5xx among them, and
// non-5xx ones slower than the 200ms threshold.
type traffic struct{ total, errors, slow int }

// simulate runs minutes of traffic through tr's checkout counter, taking
// a snapshot every FineStep, and leaves the clock at the end.
func simulate(tr *Tracker, c *fakeClock, minutes []traffic) {
	cnt := tr.Counter("checkout")
	for _, m := range minutes {
		for i := range m.total {
			switch {
			case i < m.errors:
				cnt.Observe(503, 10*time.Millisecond)
			case i < m.errors+m.slow:
				cnt.Observe(200, 300*time.Millisecond)
			default:
				cnt.Observe(200, 200*time.Millisecond) // at the threshold: good
			}
		}
		for range time.Minute / FineStep {
			c.t = c.t.Add(FineStep)
			tr.Snapshot()
		}
	}
}

func repeat(n int, t traffic) []traffic {
	out := make([]traffic, n)
	for i := range out {
		out[i] = t
	}
	return out
}

func find(t *testing.T, st Status, slo string) SLOStatus {
	t.Helper()
	for _, s := range st.SLOs {
		if s.Name == slo {
			return s
		}
	}
	t.Fatalf("no SLO %s in %+v", slo, st)
	return SLOStatus{}
}

func window(t *testing.T, s SLOStatus, w string) WindowStatus {
	t.Helper()
	for _, ws := range s.Windows {
		if ws.Window == w {
			return ws
		}
	}
	t.Fatalf("%s has no window %s", s.Name, w)
	return WindowStatus{}
}

func firing(s SLOStatus) map[string]bool {
	m := map[string]bool{}
	for _, a := range s.Alerts {
		m[a.Severity+" "+a.Long+"/"+a.Short] = a.Firing
	}
	return m
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestTrackerHandComputed checks burn rates against numbers worked out by
// hand. 55 clean minutes of 1000 checkouts, then 5 minutes in which 20 of
// each 1000 fail and 30 more take 300ms:
//
//	availability, objective 99.9% (budget 0.001):
//	  5m:  100 bad / 5000   = 0.02     -> burn 20
//	  30m: 100 / 30000      = 0.00333  -> burn 3.333
//	  1h:  100 / 60000      = 0.001667 -> burn 1.667 (6h, 1d, 3d and the
//	       budget window cover the same hour)
//	latency, objective 99.9% under 200ms:
//	  5m:  150 slow / 4900 non-5xx -> 0.030612 -> burn 30.612
//	  1h:  150 / 59900             -> burn 2.504
//
// Only the ticket on 3d/6h at 1x fires (long and short above 1, no page:
// the long windows are under 14.4 and 6). Budget left: 1 - 1.667.
func TestTrackerHandComputed(t *testing.T) {
	c := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	tr := NewTracker(Default(), c.now)
	simulate(tr, c, append(repeat(55, traffic{total: 1000}), repeat(5, traffic{total: 1000, errors: 20, slow: 30})...))
	st := tr.Status()

	avail := find(t, st, "checkout-availability")
	tests := []struct {
		slo, window string
		total, bad  uint64
		burn        float64
		covered     string
	}{
		{"checkout-availability", "5m", 5000, 100, 20, "5m0s"},
		{"checkout-availability", "30m", 30000, 100, 100.0 / 30000 / 0.001, "30m0s"},
		{"checkout-availability", "1h", 60000, 100, 100.0 / 60000 / 0.001, "1h0m0s"},
		{"checkout-availability", "6h", 60000, 100, 100.0 / 60000 / 0.001, "1h0m0s"},
		{"checkout-availability", "3d", 60000, 100, 100.0 / 60000 / 0.001, "1h0m0s"},
		{"checkout-latency", "5m", 4900, 150, 150.0 / 4900 / 0.001, "5m0s"},
		{"checkout-latency", "1h", 59900, 150, 150.0 / 59900 / 0.001, "1h0m0s"},
	}
	for _, tt := range tests {
		w := window(t, find(t, st, tt.slo), tt.window)
		if w.Total != tt.total || w.Bad != tt.bad || !near(w.BurnRate, tt.burn) || w.Covered != tt.covered {
			t.Errorf("%s %s = %+v, want total %d bad %d burn %.6f covered %s", tt.slo, tt.window, w, tt.total, tt.bad, tt.burn, tt.covered)
		}
		if !near(w.ErrorRatio, float64(tt.bad)/float64(tt.total)) {
			t.Errorf("%s %s error ratio = %v, want %v", tt.slo, tt.window, w.ErrorRatio, float64(tt.bad)/float64(tt.total))
		}
	}
	if want := 1 - 100.0/60000/0.001; !near(avail.Budget.Remaining, want) {
		t.Errorf("budget remaining = %v, want %v", avail.Budget.Remaining, want)
	}
	wantAlerts := map[string]bool{"page 1h/5m": false, "page 6h/30m": false, "ticket 1d/2h": false, "ticket 3d/6h": true}
	if got := firing(avail); !mapsEqual(got, wantAlerts) {
		t.Errorf("availability alerts = %v, want %v", got, wantAlerts)
	}
	// Other journeys saw nothing.
	if w := window(t, find(t, st, "browse-availability"), "1h"); w.Total != 0 || w.BurnRate != 0 {
		t.Errorf("browse 1h = %+v, want empty", w)
	}

	// The same numbers over HTTP.
	rec := httptest.NewRecorder()
	tr.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/slo", nil))
	var got Status
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode /debug/slo: %v\n%s", err, rec.Body)
	}
	if w := window(t, find(t, got, "checkout-availability"), "5m"); !near(w.BurnRate, 20) || w.Total != 5000 {
		t.Errorf("/debug/slo checkout 5m = %+v, want burn 20 over 5000", w)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestTrackerPages: an hour at 2% errors (burn 20) pages; the same ratio
// over only 50 requests does not (min_events guard).
func TestTrackerPages(t *testing.T) {
	tests := []struct {
		name    string
		minutes []traffic
		want    map[string]bool
	}{
		{"burn 20 for an hour", repeat(60, traffic{total: 1000, errors: 20}),
			map[string]bool{"page 1h/5m": true, "page 6h/30m": true, "ticket 1d/2h": true, "ticket 3d/6h": true}},
		{"low traffic", repeat(50, traffic{total: 1, errors: 1}),
			map[string]bool{"page 1h/5m": false, "page 6h/30m": false, "ticket 1d/2h": true, "ticket 3d/6h": true}},
		{"no traffic", repeat(10, traffic{}),
			map[string]bool{"page 1h/5m": false, "page 6h/30m": false, "ticket 1d/2h": false, "ticket 3d/6h": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			tr := NewTracker(Default(), c.now)
			simulate(tr, c, tt.minutes)
			if got := firing(find(t, tr.Status(), "checkout-availability")); !mapsEqual(got, tt.want) {
				t.Errorf("alerts = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTrackerLongRun runs past the fine ring's span: short windows still
// read the fine samples, a day's window the coarse ones since the start.
func TestTrackerLongRun(t *testing.T) {
	c := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	tr := NewTracker(Default(), c.now)
	simulate(tr, c, repeat(8*60, traffic{total: 10})) // 8h, 4800 requests
	simulate(tr, c, repeat(5, traffic{total: 10, errors: 10}))
	s := find(t, tr.Status(), "checkout-availability")
	if w := window(t, s, "5m"); w.Total != 50 || w.Bad != 50 {
		t.Errorf("5m after 8h = %+v, want 50 of 50 bad", w)
	}
	if w := window(t, s, "6h"); w.Total != 3600 || w.Bad != 50 || w.Covered != "6h0m0s" {
		t.Errorf("6h after 8h = %+v, want 3600 requests, 50 bad", w)
	}
	if w := window(t, s, "1d"); w.Total != 4850 || w.Bad != 50 || w.Covered != "8h5m0s" {
		t.Errorf("1d after 8h = %+v, want all 4850 requests since the start", w)
	}
}
