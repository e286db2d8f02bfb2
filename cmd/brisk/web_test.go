package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/briskhq/brisk/internal/web"
)

// artifactDir is where browser tests write screenshots for people to look
// at (gitignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "test-artifacts", "web")
	if d := os.Getenv("BRISK_TEST_ARTIFACTS"); d != "" {
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact dir: %v", err)
	}
	return dir
}

// browser starts headless Chromium with a fresh profile, loopback only,
// and returns a context for its tab that ends after two minutes. JavaScript
// exceptions in the pages fail the test. Without Chromium the test skips,
// except in CI (CI=true), where it fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install -y chromium); browser tests must run in CI")
		}
		t.Skip("chromium is not installed (apt-get install -y chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser; no timeout on this context
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var exceptions []string
	go func() {
		for m, err := range chromedp.Console(bctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError {
				mu.Lock()
				exceptions = append(exceptions, string(m.Type)+": "+m.Text)
				mu.Unlock()
			}
		}
	}()
	ctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exceptions {
			if !strings.Contains(e, "net::ERR_CONNECTION_RESET") { // the test's own fault injection
				t.Errorf("browser console %s", e)
			}
		}
	})
	return ctx
}

// shot saves a full-page PNG screenshot as name.png in the artifact dir.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	t.Logf("screenshot: %s", path)
}

// do runs browser steps and fails the test, naming the step, on error.
func do(t *testing.T, ctx context.Context, step string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v (page %s)", step, err, loc)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript predicate to hold, also across the page
// navigating while it waits.
func until(expr string, opts ...chromedp.PollOption) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			_, err := chromedp.Poll[bool](expr, opts...)(ctx, tg)
			if err == nil || ctx.Err() != nil || !(strings.Contains(err.Error(), "navigated") || strings.Contains(err.Error(), "context was destroyed") ||
				strings.Contains(err.Error(), "Cannot find context")) {
				return chromedp.Void{}, err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

type css = chromedp.CSS

// navTiming is what the browser measured of one page load.
type navTiming struct {
	TTFB     float64 `json:"ttfb"`      // responseStart - requestStart, ms
	HTMLDone float64 `json:"html_done"` // responseEnd since navigation start, ms
	Parsed   float64 `json:"parsed"`    // domInteractive since navigation start, ms
	DOMReady float64 `json:"dom_ready"` // domContentLoadedEventEnd since navigation start, ms
	Load     float64 `json:"load"`
	Bytes    []struct {
		Name     string  `json:"name"`
		Type     string  `json:"type"`
		Encoded  float64 `json:"encoded"`  // body bytes on the wire (compressed)
		Transfer float64 `json:"transfer"` // bytes fetched over the network; 0 from a cache
		Start    float64 `json:"start"`
		End      float64 `json:"end"`
	} `json:"bytes"`
}

const navTimingJS = `(() => {
  const n = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource").map(r => ({name: r.name, type: r.initiatorType, encoded: r.encodedBodySize, transfer: r.transferSize, start: r.startTime, end: r.responseEnd}));
  return {ttfb: n.responseStart - n.requestStart, html_done: n.responseEnd, parsed: n.domInteractive, dom_ready: n.domContentLoadedEventEnd, load: n.loadEventEnd,
    bytes: [{name: n.name, type: "document", encoded: n.encodedBodySize}, ...res]};
})()`

// contrastJS lists visible text whose contrast with its background is
// below WCAG AA: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold).
// Text over a gradient is skipped.
const contrastJS = `(() => {
  const rgb = (c) => c.match(/[\d.]+/g).map(Number);
  const lum = (c) => { const [r, g, b] = rgb(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const opaque = (c) => { const m = rgb(c); return m.length < 4 || m[3] > 0; };
  const bg = (el) => {
    for (; el; el = el.parentElement) {
      const cs = getComputedStyle(el);
      if (cs.backgroundImage !== "none") return null;
      if (opaque(cs.backgroundColor)) return cs.backgroundColor;
    }
    return "rgb(255, 255, 255)";
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = el.tagName === "INPUT" ? el.value : [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join("").trim();
    if (!text || !el.getClientRects().length) continue;
    const cs = getComputedStyle(el), b = bg(el);
    if (!b || cs.visibility === "hidden") continue;
    const l1 = lum(cs.color), l2 = lum(b), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), large = size >= 24 || (Number(cs.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) bad.push(el.tagName + " \"" + text.slice(0, 30) + "\" " + ratio.toFixed(2) + ":1");
  }
  return bad;
})()`

// checkContrast fails the test for text below WCAG AA contrast.
func checkContrast(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if bad := eval[[]string](t, ctx, contrastJS); len(bad) > 0 {
		t.Errorf("%s: text with too little contrast: %q", page, bad)
	}
}

// TestWebStorefront drives the storefront in headless Chromium as a new
// shopper: register, search, add two products, check out with a double
// click while the first answer is lost on its way back, and find exactly
// one order in the history.
func TestWebStorefront(t *testing.T) {
	ctx := browser(t)
	_, c, _ := startUp(t)
	base := c.base

	// First visit of the home page (after a warm-up request to the same
	// origin that caches nothing): timing and page weight as the browser
	// measured them. Then a repeat visit, served from the caches.
	home := func(step string) navTiming {
		do(t, ctx, step,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(css(`#featured-h`)),
			until(`document.readyState === "complete" && performance.getEntriesByType("navigation")[0].loadEventEnd > 0`),
		)
		return eval[navTiming](t, ctx, navTimingJS)
	}
	do(t, ctx, "warm up", chromedp.Navigate(base+"/healthz"))
	nt := home("home page, first visit")
	var weight float64
	var parts []string
	for _, b := range nt.Bytes {
		if b.Type == "document" || strings.Contains(b.Name, "/static/") {
			weight += b.Encoded
			parts = append(parts, fmt.Sprintf("%s=%.0f B in %.0f..%.0f ms", strings.TrimPrefix(b.Name, base), b.Encoded, b.Start, b.End))
		}
	}
	t.Logf("home page, first visit: TTFB %.1f ms, HTML received %.1f ms, DOM interactive %.1f ms, DOM ready %.1f ms, load %.1f ms, %.0f bytes compressed (%s)",
		nt.TTFB, nt.HTMLDone, nt.Parsed, nt.DOMReady, nt.Load, weight, strings.Join(parts, ", "))
	if weight <= 0 || weight > 100<<10 {
		t.Errorf("home page weighs %.0f bytes compressed on first load, budget %d", weight, 100<<10)
	}
	swctx, cancelSW := context.WithTimeout(ctx, 15*time.Second)
	_, err := chromedp.Run(swctx, chromedp.Evaluate[bool](`navigator.serviceWorker.ready.then((r) => !!r.active)`, chromedp.EvalAwaitPromise))
	cancelSW()
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.serviceWorker.getRegistration().then(r => r ?
			JSON.stringify({installing: !!r.installing, waiting: !!r.waiting, active: !!r.active}) : "none")`, chromedp.EvalAwaitPromise))
		sw := c.do("GET", "/sw.js", nil)
		t.Fatalf("service worker not active: %v; registration %s; GET /sw.js = %d", err, state, sw.status)
	}
	again := home("home page, repeat visit")
	var fetched []string
	for _, b := range again.Bytes {
		if strings.Contains(b.Name, "/static/") && b.Transfer > 0 {
			fetched = append(fetched, strings.TrimPrefix(b.Name, base))
		}
	}
	t.Logf("home page, repeat visit: TTFB %.1f ms, HTML received %.1f ms, DOM ready %.1f ms, load %.1f ms, assets fetched again: %q",
		again.TTFB, again.HTMLDone, again.DOMReady, again.Load, fetched)
	if len(fetched) > 0 {
		t.Errorf("repeat visit fetched immutable assets again: %q", fetched)
	}
	shot(t, ctx, "home")
	checkContrast(t, ctx, "home")

	// Register.
	email := fmt.Sprintf("web-%d@brisk.test", time.Now().UnixNano())
	password := "correct-horse-battery"
	do(t, ctx, "register",
		chromedp.Navigate(base+"/register"),
		chromedp.WaitVisible(css(`#email`)),
		chromedp.SendKeys(css(`#name`), "Web Tester"),
		chromedp.SendKeys(css(`#email`), email),
		chromedp.SendKeys(css(`#password`), password),
		chromedp.Click(css(`#auth-form button[type=submit]`)),
		chromedp.WaitVisible(css(`#signout`)),
	)

	// Search from the header, then add the first two results.
	do(t, ctx, "search",
		chromedp.SendKeys(css(`#q`), "oak\n"),
		chromedp.WaitVisible(`//h1[contains(., "Results for")]`),
		chromedp.WaitVisible(css(`.grid .card:nth-child(2) button.add`)),
	)
	shot(t, ctx, "search")
	checkContrast(t, ctx, "search")
	if q := eval[string](t, ctx, `document.querySelector("#q").value`); q != "oak" {
		t.Errorf("search box on the results page = %q, want oak", q)
	}
	names := eval[[]string](t, ctx, `[...document.querySelectorAll(".grid .card-name")].slice(0, 2).map(e => e.textContent)`)
	do(t, ctx, "add two products",
		chromedp.Click(css(`.grid .card:nth-child(1) button.add`)),
		until(`document.querySelector("#cart-count").textContent === "1"`),
		chromedp.Click(css(`.grid .card:nth-child(2) button.add`)),
		until(`document.querySelector("#cart-count").textContent === "2"`),
		until(`document.querySelector("#flash").textContent.startsWith("Added")`),
	)

	// The cart shows both.
	do(t, ctx, "cart",
		chromedp.Navigate(base+"/cart"),
		chromedp.WaitVisible(css(`#cart tbody tr:nth-child(2)`)),
	)
	if rows := eval[int](t, ctx, `document.querySelectorAll("#cart tbody tr").length`); rows != 2 {
		t.Fatalf("cart has %d lines, want 2", rows)
	}
	shot(t, ctx, "cart")
	checkContrast(t, ctx, "cart")

	// Checkout: the first answer is lost on its way back (the order is made
	// but the page sees a network error), and the button is double-clicked.
	var mu sync.Mutex
	var keys []string
	err = chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		mu.Lock()
		keys = append(keys, fmt.Sprint(e.Request.Headers["Idempotency-Key"]))
		first := len(keys) == 1
		mu.Unlock()
		go func() { // Listen's func must not run commands itself
			var err error
			if first {
				_, err = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
			} else {
				_, err = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
			}
			if err != nil && ctx.Err() == nil {
				t.Logf("intercept checkout: %v", err)
			}
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	intercept := chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
			{URLPattern: "*/v1/checkout", RequestStage: fetch.RequestStageResponse}}})
		return err
	})
	do(t, ctx, "checkout page",
		chromedp.Click(css(`#to-checkout`)),
		chromedp.WaitVisible(css(`#place`)),
		intercept,
	)
	shot(t, ctx, "checkout")
	checkContrast(t, ctx, "checkout")
	do(t, ctx, "place the order",
		chromedp.DoubleClick(css(`#place`)),
		until(`location.pathname.startsWith("/orders/") && location.search.includes("placed=1")`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.WaitVisible(css(`.status-paid`)),
		until(`document.querySelector("#flash").textContent.startsWith("Thank you")`),
	)
	shot(t, ctx, "order")
	checkContrast(t, ctx, "order")
	mu.Lock()
	sent := append([]string(nil), keys...)
	mu.Unlock()
	if len(sent) < 2 {
		t.Errorf("checkout requests = %d, want the lost one and its retry", len(sent))
	}
	for _, k := range sent {
		if k != sent[0] || k == "" || k == "<nil>" {
			t.Errorf("Idempotency-Keys %q: want one key on every attempt", sent)
			break
		}
	}

	// The history shows exactly one order, with both products.
	do(t, ctx, "orders",
		chromedp.Navigate(base+"/orders"),
		chromedp.WaitVisible(css(`#orders-table tbody tr`)),
	)
	shot(t, ctx, "orders")
	checkContrast(t, ctx, "orders")
	if n := eval[int](t, ctx, `document.querySelectorAll("#orders-table tbody tr").length`); n != 1 {
		t.Errorf("order history shows %d orders, want 1", n)
	}
	var page struct {
		Items []order `json:"items"`
	}
	c.as(c.login(email, password)).do("GET", "/v1/orders", nil).want(t, 200, "orders").json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Status != "paid" || len(page.Items[0].Items) != 2 {
		t.Fatalf("orders of the new user = %+v, want one paid order of two products", page.Items)
	}
	t.Logf("order %s: %s and %s, %d checkout requests with one key", page.Items[0].ID, names[0], names[1], len(sent))

	// Keyboard only: the skip link comes first, every stop shows a focus
	// outline, and a product goes into the cart with Tab and Enter.
	do(t, ctx, "keyboard: product page",
		chromedp.Navigate(base+"/p/5"),
		chromedp.WaitVisible(css(`#qty`)),
		chromedp.KeyEvent("\t"),
	)
	if got := eval[string](t, ctx, `document.activeElement.className`); got != "skip" {
		t.Errorf("first Tab stop = %q, want the skip link", got)
	}
	for i := 0; ; i++ {
		do(t, ctx, "keyboard: Tab", chromedp.KeyEvent("\t"))
		stop := eval[map[string]string](t, ctx, `(() => { const e = document.activeElement, cs = getComputedStyle(e);
			return {id: e.id, tag: e.tagName, outline: cs.outlineStyle + " " + cs.outlineWidth}; })()`)
		if stop["outline"] == "none 0px" || stop["tag"] == "BODY" {
			t.Errorf("Tab stop %d (%s#%s) shows no focus outline", i, stop["tag"], stop["id"])
		}
		if stop["id"] == "qty" {
			break
		}
		if i == 20 {
			t.Fatalf("the quantity field is not reachable with Tab")
		}
	}
	do(t, ctx, "keyboard: add to cart",
		chromedp.KeyEvent("\b3"), // select-all is not needed: the field holds "1"
		chromedp.KeyEvent("\r"),
		until(`document.querySelector("#flash").textContent.startsWith("Added")`),
	)
	if got := eval[string](t, ctx, `document.querySelector("#cart-count").textContent`); got != "3" {
		t.Errorf("cart count after adding 3 with the keyboard = %s, want 3", got)
	}

	// A narrow screen: no sideways scrolling.
	do(t, ctx, "narrow screen",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css(`#featured-h`)),
	)
	if eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Errorf("the home page scrolls sideways on a 390 px screen")
	}
	shot(t, ctx, "home-narrow")
	checkContrast(t, ctx, "home (narrow)")
}

// scrape reads /metrics: the request histogram's total count and its
// buckets summed over every series (cumulative, by upper bound).
type scrape struct {
	at      time.Time
	count   float64
	buckets map[float64]float64
}

func scrapeMetrics(t *testing.T, c *client) scrape {
	t.Helper()
	before := time.Now()
	r := c.do("GET", "/metrics", nil).want(t, 200, "metrics")
	after := time.Now()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	s := scrape{at: before.Add(after.Sub(before) / 2), buckets: map[float64]float64{}}
	for _, m := range mfs[web.DefaultMetrics.Requests].GetMetric() { // no family before the first request
		h := m.GetHistogram()
		s.count += float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			s.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		s.buckets[math.Inf(1)] += float64(h.GetSampleCount())
	}
	return s
}

// quantileBetween estimates the q-quantile of the requests between two
// scrapes as PromQL's histogram_quantile does.
func quantileBetween(q float64, a, b scrape) float64 {
	var les []float64
	for le := range b.buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	total := b.count - a.count
	rank := q * total
	lower, below := 0.0, 0.0
	for _, le := range les {
		n := b.buckets[le] - a.buckets[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return lower
			}
			return lower + (le-lower)*(rank-below)/(n-below)
		}
		lower, below = le, n
	}
	return math.NaN()
}

type dashPoint struct {
	Seq    uint64 `json:"seq"`
	T      int64  `json:"t"`
	Groups map[string]struct {
		RPS   *float64 `json:"rps"`
		P95   *float64 `json:"p95"`
		Total float64  `json:"total"`
	} `json:"groups"`
}

// TestWebDashboard runs brisk load with a rising rate against brisk up
// while an admin watches /dashboard in Chromium: the request rate shown
// rises, and the dashboard's numbers agree with /metrics.
func TestWebDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 14 s load; skipped with -short")
	}
	ctx := browser(t)
	_, c, _ := startUp(t)
	base := c.base
	scrapeMetrics(t, c) // /metrics is there

	do(t, ctx, "sign in as admin",
		chromedp.Navigate(base+"/login?next=/dashboard"),
		chromedp.WaitVisible(css(`#email`)),
		chromedp.SendKeys(css(`#email`), "admin@brisk.test"),
		chromedp.SendKeys(css(`#password`), "admin-pass-1"),
		chromedp.Click(css(`#auth-form button[type=submit]`)),
		chromedp.WaitVisible(css(`#dash`)),
		until(`/^Live/.test(document.querySelector("#dash-status").textContent)`),
	)
	admin := c.as(c.login("admin@brisk.test", "admin-pass-1"))
	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
	checkProblem(t, shopper.do("GET", "/dashboard/data", nil), 403, "dashboard data as a shopper")
	checkProblem(t, c.do("GET", "/dashboard/data", nil), 401, "dashboard data without a token")

	// A rising load: 20 to 400 requests per second over 14 s.
	lctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var lout, lerr syncBuffer
	loadDone := make(chan error, 1)
	go func() {
		loadDone <- run(lctx, []string{"load", "--target", base, "--ramp", "20:400/14s", "--scenario", "product",
			"--products", "300", "--progress", "off", "--users", "1", "--seed", "1"}, func(string) string { return "" }, &lout, &lerr)
	}()
	tile := func() float64 {
		s := eval[string](t, ctx, `document.querySelector("#t-rps").textContent`)
		v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
		if err != nil {
			t.Fatalf("requests/s tile shows %q", s)
		}
		return v
	}
	time.Sleep(4 * time.Second)
	early := tile()
	m1 := scrapeMetrics(t, c)
	time.Sleep(8 * time.Second)
	late := tile()
	m2 := scrapeMetrics(t, c)
	time.Sleep(1500 * time.Millisecond) // one more sample after m2
	shot(t, ctx, "dashboard")
	checkContrast(t, ctx, "dashboard")
	var data struct {
		Points []dashPoint `json:"points"`
	}
	admin.do("GET", "/dashboard/data", nil).want(t, 200, "dashboard data").json(t, &data)
	if err := <-loadDone; err != nil {
		t.Logf("brisk load: %v\n%s", err, lerr.String())
	}
	t.Logf("requests/s tile: %.0f after 4 s, %.0f after 12 s", early, late)
	if !(late > 1.5*early && late > 100) {
		t.Errorf("the dashboard's request rate did not rise: %.0f, then %.0f", early, late)
	}

	// The dashboard's cumulative count at the scrape's time, interpolated
	// between its samples, is what /metrics said then.
	totalAt := func(at time.Time) float64 {
		ms := at.UnixMilli()
		for i := 1; i < len(data.Points); i++ {
			a, b := data.Points[i-1], data.Points[i]
			if a.T <= ms && ms <= b.T {
				ta, tb := a.Groups["all"].Total, b.Groups["all"].Total
				return ta + (tb-ta)*float64(ms-a.T)/float64(b.T-a.T)
			}
		}
		t.Fatalf("no dashboard points around %v", at)
		return 0
	}
	metricsRate := (m2.count - m1.count) / m2.at.Sub(m1.at).Seconds()
	for _, m := range []scrape{m1, m2} {
		// Both reads are timed to within a scheduling delay or so on a
		// busy machine: allow 100 ms of traffic on top of 3%.
		d := totalAt(m.at)
		t.Logf("requests counted: /metrics %.0f, dashboard %.0f", m.count, d)
		if math.Abs(d-m.count) > 0.03*m.count+0.1*metricsRate+5 {
			t.Errorf("dashboard counts %.0f requests where /metrics counts %.0f", d, m.count)
		}
	}
	// The rate: the dashboard's per-second rates, weighted by their
	// intervals, over the samples between the scrapes, against /metrics'
	// rate between the scrapes.
	var sum, span float64
	n := 0
	for i := 1; i < len(data.Points); i++ {
		prev, p := data.Points[i-1], data.Points[i]
		if prev.T >= m1.at.UnixMilli() && p.T <= m2.at.UnixMilli() && p.Groups["all"].RPS != nil {
			dt := float64(p.T-prev.T) / 1000
			sum += *p.Groups["all"].RPS * dt
			span += dt
			n++
		}
	}
	dashRate := sum / span
	t.Logf("mean rate between scrapes: /metrics %.1f/s, dashboard %.1f/s over %d samples", metricsRate, dashRate, n)
	if n < 5 || math.Abs(dashRate-metricsRate) > 0.15*metricsRate {
		t.Errorf("dashboard rate %.1f/s, /metrics %.1f/s", dashRate, metricsRate)
	}
	// p95 of the last window against the same estimate from /metrics.
	var last dashPoint
	for _, p := range data.Points {
		if p.T <= m2.at.UnixMilli() {
			last = p
		}
	}
	want := 1000 * quantileBetween(0.95, m1, m2)
	if got := last.Groups["all"].P95; got == nil || math.Abs(*got-want) > math.Max(0.5*want, 2) {
		t.Errorf("dashboard p95 %v ms, /metrics says %.2f ms", got, want)
	} else {
		t.Logf("p95: /metrics %.2f ms, dashboard %.2f ms", want, *got)
	}
}
