package canary

import (
	"math"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// hist records values (microseconds) into a histogram shaped like
// internal/load's.
func hist(values ...int64) *hdrhistogram.Histogram {
	h := hdrhistogram.New(1, 3_600_000_000, 3)
	for _, v := range values {
		h.RecordValue(v)
	}
	return h
}

func TestMannWhitney(t *testing.T) {
	tests := []struct {
		name   string
		x, y   []int64
		wantU  float64
		wantPS float64
		wantP  float64 // one-sided, y larger; asymptotic with continuity correction
	}{
		// scipy.stats.mannwhitneyu(y, x, alternative="greater", method="asymptotic")
		{"separated", []int64{1, 2, 3, 4, 5}, []int64{6, 7, 8, 9, 10}, 25, 1, 0.006092},
		{"reversed", []int64{6, 7, 8, 9, 10}, []int64{1, 2, 3, 4, 5}, 0, 0, 0.996},
		{"identical", []int64{1, 2, 3, 4}, []int64{1, 2, 3, 4}, 8, 0.5, 0.5588},
		// ties across samples: U counts half a pair per tie.
		{"ties", []int64{1, 2, 2, 3}, []int64{2, 3, 3, 4}, 13, 13.0 / 16, 0.0860},
		{"all tied", []int64{5, 5}, []int64{5, 5, 5}, 3, 0.5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ps, p := mannWhitney(bins(hist(tt.x...), 1, 0), bins(hist(tt.y...), 1, 0))
			if u != tt.wantU || math.Abs(ps-tt.wantPS) > 1e-9 || math.Abs(p-tt.wantP) > 0.002 {
				t.Errorf("mannWhitney(%v, %v) = U %v, PS %v, p %.4f; want %v, %v, %.4f", tt.x, tt.y, u, ps, p, tt.wantU, tt.wantPS, tt.wantP)
			}
		})
	}
}

func TestBinsScaled(t *testing.T) {
	bs := bins(hist(100, 100, 200), 1.5, 10)
	if len(bs) != 2 || bs[0].v != 160 || bs[0].n != 2 || bs[1].v != 310 || bs[1].n != 1 {
		t.Errorf("bins = %+v, want values 160 (2) and 310 (1)", bs)
	}
	if bins(nil, 1, 0) != nil || bins(hist(), 1, 0) != nil {
		t.Errorf("bins of an empty histogram not empty")
	}
}

func TestZQuantile(t *testing.T) {
	tests := []struct{ alpha, want float64 }{{0.05, 1.6449}, {0.01, 2.3263}, {0.5, 0}, {0.001, 3.0902}}
	for _, tt := range tests {
		if got := zQuantile(tt.alpha); math.Abs(got-tt.want) > 1e-4 {
			t.Errorf("zQuantile(%v) = %v, want %v", tt.alpha, got, tt.want)
		}
		if got := upperTail(tt.want); math.Abs(got-tt.alpha) > 1e-4 {
			t.Errorf("upperTail(%v) = %v, want %v", tt.want, got, tt.alpha)
		}
	}
}

func TestQuantileBound(t *testing.T) {
	// 1..1000: the true median is ~500; the 99% bounds lie a few dozen
	// ranks either side: sqrt(1000*.25)*2.326 = 36.8.
	var vs []int64
	for i := int64(1); i <= 1000; i++ {
		vs = append(vs, i)
	}
	bs := bins(hist(vs...), 1, 0)
	tests := []struct {
		name   string
		q      float64
		upper  bool
		lo, hi int64
	}{
		{"median upper", 0.5, true, 536, 538},
		{"median lower", 0.5, false, 463, 464},
		{"p99 upper clamps to max", 0.999, true, 1000, 1000},
		{"p1 lower clamps to min", 0.001, false, 1, 1},
	}
	for _, tt := range tests {
		if got := quantileBound(bs, tt.q, 0.01, tt.upper); got < tt.lo || got > tt.hi {
			t.Errorf("%s: quantileBound(q=%v, upper=%v) = %d, want %d..%d", tt.name, tt.q, tt.upper, got, tt.lo, tt.hi)
		}
	}
	if got := quantileBound(nil, 0.5, 0.01, true); got != 0 {
		t.Errorf("quantileBound(empty) = %d, want 0", got)
	}
}

func TestErrorIncrease(t *testing.T) {
	tests := []struct {
		name             string
		eb, nb, ec, nc   int64
		slack            float64
		significantAt001 bool
	}{
		{"both clean", 0, 5000, 0, 5000, 0.001, false},
		{"same rate", 50, 5000, 52, 5000, 0.001, false},
		{"canary better", 50, 5000, 5, 5000, 0.001, false},
		{"canary 5% errors", 0, 5000, 250, 5000, 0.001, true},
		{"within slack", 0, 5000, 3, 5000, 0.001, false},
		{"tiny sample, one error", 0, 20, 1, 20, 0.001, false},
		{"one point worse, large n", 100, 20000, 300, 20000, 0.001, true},
	}
	for _, tt := range tests {
		p := errorIncrease(tt.eb, tt.nb, tt.ec, tt.nc, tt.slack)
		if got := p < 0.01; got != tt.significantAt001 {
			t.Errorf("%s: errorIncrease(%d/%d, %d/%d) p = %.4g, significant = %v, want %v", tt.name, tt.eb, tt.nb, tt.ec, tt.nc, p, got, tt.significantAt001)
		}
	}
}
