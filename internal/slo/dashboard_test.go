package slo

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDashboard(t *testing.T) {
	s := Default()
	b, err := Dashboard(s)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct{ H, W, X, Y int }
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
			t.Errorf("panel %q has gridPos %+v outside 24 columns", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
				t.Errorf("panel %q has a bad target %+v", p.Title, tg)
			}
		}
	}
	for _, o := range s.SLOs() {
		if !titles[o.Name+" budget left"] || !titles[o.Name+" burn rate"] {
			t.Errorf("no budget or burn-rate panel for %s", o.Name)
		}
	}
	qs, err := DashboardQueries(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{MetricRequests, MetricDuration + "_bucket", MetricInFlight, MetricDBConns, MetricConcurrencyLimit,
		"go_goroutines", MetricCacheHits, MetricPaymentRequests, MetricBreakerState, RecordBudgetLeft} {
		if !strings.Contains(strings.Join(qs, "\n"), want) {
			t.Errorf("no dashboard query reads %s", want)
		}
	}
}
