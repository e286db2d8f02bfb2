package canary

import (
	"math"
	"slices"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// bin is one non-empty bucket of a latency histogram: n samples whose
// values lie in [from, to] microseconds, represented by v.
type bin struct {
	from, to int64
	v        float64 // representative value (the bucket's midpoint), possibly scaled
	n        int64
}

// bins returns the non-empty buckets of h in ascending order, each value
// mapped to v*scale + shift (microseconds).
func bins(h *hdrhistogram.Histogram, scale, shift float64) []bin {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	var out []bin
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		mid := float64(b.From+b.To) / 2
		out = append(out, bin{from: b.From, to: b.To, v: mid*scale + shift, n: b.Count})
	}
	return out
}

func total(bs []bin) int64 {
	var n int64
	for _, b := range bs {
		n += b.n
	}
	return n
}

// mannWhitney is the one-sided Mann–Whitney U test of "y tends to be
// larger than x" on binned samples. It returns U for y (pairs where y > x,
// ties counting one half), the probability of superiority U/(nx·ny), and
// the p-value of the normal approximation with tie correction and
// continuity correction. Equal values across the two samples are ties.
func mannWhitney(x, y []bin) (u, ps, p float64) {
	type point struct {
		v      float64
		cx, cy int64
	}
	pts := make([]point, 0, len(x)+len(y))
	for _, b := range x {
		pts = append(pts, point{v: b.v, cx: b.n})
	}
	for _, b := range y {
		pts = append(pts, point{v: b.v, cy: b.n})
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	nx, ny := float64(total(x)), float64(total(y))
	if nx == 0 || ny == 0 {
		return 0, math.NaN(), math.NaN()
	}
	var xBelow, ties float64
	for i := 0; i < len(pts); {
		j := i
		var cx, cy float64
		for ; j < len(pts) && pts[j].v == pts[i].v; j++ {
			cx += float64(pts[j].cx)
			cy += float64(pts[j].cy)
		}
		u += cy * (xBelow + cx/2)
		xBelow += cx
		t := cx + cy
		ties += t*t*t - t
		i = j
	}
	n := nx + ny
	mean := nx * ny / 2
	variance := nx * ny / 12 * ((n + 1) - ties/(n*(n-1)))
	ps = u / (nx * ny)
	if variance <= 0 { // every value tied
		if u > mean {
			return u, ps, 0
		}
		return u, ps, 1
	}
	z := (u - mean - 0.5) / math.Sqrt(variance)
	return u, ps, upperTail(z)
}

// upperTail is P(Z > z) for a standard normal Z.
func upperTail(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// zQuantile returns z with P(Z > z) = alpha.
func zQuantile(alpha float64) float64 { return math.Sqrt2 * math.Erfinv(1-2*alpha) }

// quantileBound is a distribution-free one-sided confidence bound for the
// q-quantile (0 < q < 1) of the sampled distribution at confidence 1-alpha,
// from the binomial distribution of the number of samples below the
// quantile (normal approximation): the order statistic of rank
// n·q ± z·sqrt(n·q·(1-q)). upper selects the upper bound (the highest value
// of its bucket) or the lower one (the lowest value of its bucket).
func quantileBound(bs []bin, q, alpha float64, upper bool) int64 {
	n := total(bs)
	if n == 0 {
		return 0
	}
	fn := float64(n)
	se := zQuantile(alpha) * math.Sqrt(fn*q*(1-q))
	var rank int64
	if upper {
		rank = int64(math.Ceil(fn*q + se))
	} else {
		rank = int64(math.Floor(fn*q - se))
	}
	rank = max(1, min(n, rank))
	return valueAtRank(bs, rank, upper)
}

// valueAtRank returns the bucket holding the rank-th smallest sample (1-based):
// its highest value when upper, else its lowest.
func valueAtRank(bs []bin, rank int64, upper bool) int64 {
	var seen int64
	for _, b := range bs {
		seen += b.n
		if seen >= rank {
			if upper {
				return b.to
			}
			return b.from
		}
	}
	if upper {
		return bs[len(bs)-1].to
	}
	return bs[len(bs)-1].from
}

// errorIncrease tests whether the canary's error rate exceeds the
// baseline's by more than slack (a fraction): a one-sided z-test of
// H0: pc - pb <= slack with the Agresti–Caffo adjustment (one error and
// one success added to each side), which keeps the test defined when a
// side has no errors. It returns the p-value.
func errorIncrease(errB, nB, errC, nC int64, slack float64) float64 {
	pb := float64(errB+1) / float64(nB+2)
	pc := float64(errC+1) / float64(nC+2)
	se := math.Sqrt(pb*(1-pb)/float64(nB+2) + pc*(1-pc)/float64(nC+2))
	return upperTail((pc - pb - slack) / se)
}
