package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/postgres"
	"github.com/briskhq/brisk/internal/postgres/pgtest"
	"github.com/briskhq/brisk/internal/problem"
	"github.com/briskhq/brisk/internal/redis/redistest"
)

// TestJWTAttacks: every forged, stale or foreign token is refused with a
// 401 problem at the HTTP level, and a shopper cannot use admin routes.
func TestJWTAttacks(t *testing.T) {
	_, c, dir := startUp(t)
	shopperTok := c.login("shopper@brisk.test", "shopper-pass-1")
	adminTok := c.login("admin@brisk.test", "admin-pass-1")
	keys, err := auth.LoadKeys(filepath.Join(dir, "jwt-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	real := &auth.Tokens{Keys: keys, Issuer: "brisk", Audience: "brisk-api", TTL: time.Hour}
	issue := func(mod func(*auth.Tokens)) string {
		tk := *real
		mod(&tk)
		s, _, err := tk.Issue(auth.User{ID: 1, Role: auth.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherKey, _ := auth.GenerateKey()
	otherKeys, _ := auth.NewKeys(otherKey)

	b64 := func(v any) string {
		j, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	header := func(alg string) string {
		return b64(map[string]string{"alg": alg, "kid": keys.SigningKeyID(), "typ": "JWT"})
	}
	claims := b64(map[string]any{"iss": "brisk", "aud": "brisk-api", "sub": "1", "role": "admin",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	jwks := c.do("GET", "/.well-known/jwks.json", nil).want(t, 200, "jwks").body
	mac := hmac.New(sha256.New, jwks)
	mac.Write([]byte(header("HS256") + "." + claims))
	hsTok := header("HS256") + "." + claims + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	parts := strings.Split(shopperTok, ".")

	tests := []struct {
		name, token string
	}{
		{"alg none", header("none") + "." + claims + "."},
		{"alg none, upper case", b64(map[string]string{"alg": "NONE", "typ": "JWT"}) + "." + claims + "."},
		{"HMAC signed with the public JWKS", hsTok},
		{"unknown key id", issue(func(tk *auth.Tokens) { tk.Keys = otherKeys })},
		{"expired", issue(func(tk *auth.Tokens) { tk.Now = func() time.Time { return now.Add(-2 * time.Hour) } })},
		{"not yet valid", issue(func(tk *auth.Tokens) { tk.Now = func() time.Time { return now.Add(10 * time.Minute) } })},
		{"wrong issuer", issue(func(tk *auth.Tokens) { tk.Issuer = "evil" })},
		{"wrong audience", issue(func(tk *auth.Tokens) { tk.Audience = "other-api" })},
		{"shopper token promoted to admin", parts[0] + "." + claims + "." + parts[2]},
		{"garbage", "not.a.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, route := range []struct{ method, path string }{{"GET", "/v1/cart"}, {"PUT", "/v1/admin/products/1"}} {
				var body any
				if route.method == "PUT" {
					body = map[string]any{"available": 1}
				}
				r := c.as(tt.token).do(route.method, route.path, body)
				checkProblem(t, r, 401, tt.name+" "+route.path)
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
				}
			}
		})
	}
	p := checkProblem(t, c.as(shopperTok).do("PUT", "/v1/admin/products/1", map[string]any{"available": 5}), 403, "shopper on an admin route")
	if p.Type != problem.TypeForbidden {
		t.Errorf("shopper on an admin route: type %q", p.Type)
	}
	c.as(adminTok).do("PUT", "/v1/admin/products/1", map[string]any{"available": 5}).want(t, 200, "admin on an admin route")
	c.as(shopperTok).do("GET", "/v1/cart", nil).want(t, 200, "shopper on the cart")
}

// rateLimited checks a 429 problem with the rate-limit header fields of policy.
func rateLimited(t *testing.T, r response, policy, what string) {
	t.Helper()
	p := checkProblem(t, r, 429, what)
	if p.Type != problem.TypeRateLimited {
		t.Errorf("%s: problem type %q, want %s", what, p.Type, problem.TypeRateLimited)
	}
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("%s: Retry-After %q, want seconds", what, ra)
	}
	if !strings.Contains(r.header.Get("RateLimit"), fmt.Sprintf(`"%s";r=0;t=`, policy)) {
		t.Errorf("%s: RateLimit %q, want policy %s exhausted", what, r.header.Get("RateLimit"), policy)
	}
	if !strings.Contains(r.header.Get("RateLimit-Policy"), fmt.Sprintf(`"%s";q=`, policy)) {
		t.Errorf("%s: RateLimit-Policy %q, want policy %s", what, r.header.Get("RateLimit-Policy"), policy)
	}
}

func TestRateLimits(t *testing.T) {
	t.Run("per IP", func(t *testing.T) {
		_, c, _ := startUp(t, "--rate-limit-exempt", "none", "--rate-limit-ip", "5/m", "--rate-limit-user", "off")
		for i := range 5 {
			r := c.do("GET", "/v1/products/1", nil).want(t, 200, "within the IP budget")
			if got, want := r.header.Get("RateLimit"), fmt.Sprintf(`"ip";r=%d;t=`, 4-i); !strings.HasPrefix(got, want) {
				t.Errorf("request %d: RateLimit %q, want %s...", i, got, want)
			}
			if got := r.header.Get("RateLimit-Policy"); got != `"ip";q=5;w=60` {
				t.Errorf("RateLimit-Policy %q", got)
			}
		}
		rateLimited(t, c.do("GET", "/v1/products?q=oak", nil), "ip", "6th request from one IP")
		c.do("GET", "/healthz", nil).want(t, 200, "health checks are not limited")
	})
	t.Run("per user", func(t *testing.T) {
		_, c, _ := startUp(t, "--rate-limit-exempt", "none", "--rate-limit-ip", "off", "--rate-limit-user", "3/m")
		ann, bob := c.as(c.register("ann@example.com")), c.as(c.register("bob@example.com"))
		for range 3 {
			ann.do("GET", "/v1/cart", nil).want(t, 200, "ann within her budget")
		}
		rateLimited(t, ann.do("GET", "/v1/orders", nil), "user", "ann's 4th request")
		bob.do("GET", "/v1/cart", nil).want(t, 200, "bob has his own budget")
		for range 5 {
			c.do("GET", "/v1/products/2", nil).want(t, 200, "anonymous requests have no user budget")
		}
	})
	t.Run("login brute force", func(t *testing.T) {
		_, c, _ := startUp(t, "--rate-limit-exempt", "none", "--rate-limit-ip", "off", "--rate-limit-user", "off",
			"--login-limit-account", "3/m", "--login-limit-ip", "5/m")
		wrong := map[string]string{"email": "shopper@brisk.test", "password": "guess-guess"}
		for range 3 {
			checkProblem(t, c.do("POST", "/v1/auth/login", wrong), 401, "wrong password")
		}
		right := map[string]string{"email": "SHOPPER@brisk.test", "password": "shopper-pass-1"}
		rateLimited(t, c.do("POST", "/v1/auth/login", right), "login-account", "4th attempt on the account")
		c.login("admin@brisk.test", "admin-pass-1") // another account: the IP's 5th attempt (the refused one counted)
		rateLimited(t, c.do("POST", "/v1/auth/login", map[string]string{"email": "admin@brisk.test", "password": "admin-pass-1"}),
			"login-ip", "6th attempt from one IP")
		c.register("carol@example.com") // registration is not a login
	})
}

// TestSharedRateLimit: two API instances on one Redis hold one GCRA
// budget per client between them.
func TestSharedRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL + Redis + 2 instances; skipped in -short")
	}
	s := startStack(t, 2, "", "--rate-limit-exempt", "none", "--rate-limit-ip", "8/m", "--rate-limit-user", "off")
	statuses := map[int]int{}
	for i := range 20 {
		r := s.clients[i%2].do("GET", fmt.Sprintf("/v1/products/%d", 1+i), nil)
		statuses[r.status]++
		if r.status == 429 {
			rateLimited(t, r, "ip", fmt.Sprintf("request %d", i))
		}
	}
	if statuses[200] != 8 || statuses[429] != 12 {
		t.Errorf("two instances answered %v, want 8 x 200 (one shared budget) and 12 x 429", statuses)
	}
}

// TestConcurrencyShedsBrowseFirst: at a small fixed limit, heavy browsing
// is shed (503) while checkouts, which may fill the whole limit, are not.
func TestConcurrencyShedsBrowseFirst(t *testing.T) {
	_, c, _ := startUp(t, "--concurrency-limit", "6", "--cache=false", "--payment-latency", "100ms", "--web=false")
	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
	var browse, shed, errs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.try("GET", fmt.Sprintf("/v1/products?limit=100&q=%s", []string{"oak", "wool", "steel", "leather"}[(w+i)%4]), nil)
				switch {
				case err != nil:
					errs.Add(1)
				case r.status == 503:
					shed.Add(1)
					if r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), problem.TypeOverloaded) {
						t.Errorf("shed browse request: %v %s", r.header, r.body)
					}
				case r.status != 200:
					t.Errorf("browse: %d %s", r.status, r.body)
				}
				browse.Add(1)
			}
		})
	}
	statuses := map[int]int{}
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		r := shopper.do("POST", "/v1/checkout", map[string]any{"payment_token": "tok_visa", "items": []map[string]int64{{"product_id": int64(1 + i%100), "quantity": 1}}},
			"Idempotency-Key", fmt.Sprintf("shed-%d", i))
		statuses[r.status]++
	}
	close(stop)
	wg.Wait()
	t.Logf("browse: %d requests, %d shed; checkout: %v", browse.Load(), shed.Load(), statuses)
	if errs.Load() > 0 {
		t.Errorf("%d browse requests failed at the transport", errs.Load())
	}
	if shed.Load() == 0 {
		t.Error("no browse request was shed; the test did not overload the limit")
	}
	if statuses[503] != 0 || statuses[201] == 0 {
		t.Errorf("checkouts under browse overload: %v, want all 201", statuses)
	}
}

// TestSlowClientsAndLimits: a slowloris client is cut off by the header
// timeout; oversized bodies and headers are refused.
func TestSlowClientsAndLimits(t *testing.T) {
	_, c, _ := startUp(t, "--read-header-timeout", "300ms", "--max-header-bytes", "8192")
	addr := strings.TrimPrefix(c.base, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /v1/products/1 HTTP/1.1\r\nHost: brisk\r\n"); err != nil {
		t.Fatal(err)
	}
	cut := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn) // returns when the server closes the connection
		cut <- time.Since(start)
	}()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	var took time.Duration
loop:
	for i := 0; ; i++ {
		select {
		case took = <-cut:
			break loop
		case <-ticker.C:
			if time.Since(start) > 5*time.Second {
				t.Fatal("slow client still connected after 5s")
			}
			_, _ = fmt.Fprintf(conn, "X-%d: a\r\n", i) // one header line at a time, never finishing
		}
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("slow client cut off after %v, want about the 300ms header timeout", took)
	}

	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
	big := `{"payment_token":"tok_visa","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	checkProblem(t, shopper.do("POST", "/v1/checkout", big, "Idempotency-Key", "too-big"), 413, "2 MiB body")
	// A body without Content-Length is cut at the limit too.
	req, _ := http.NewRequest("POST", c.base+"/v1/auth/login", io.MultiReader(strings.NewReader(`{"email":"`), strings.NewReader(strings.Repeat("a", 2<<20))))
	req.ContentLength = -1
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Errorf("chunked 2 MiB login body: %d, want 413", res.StatusCode)
	}
	if r := c.do("GET", "/v1/products/1", nil, "X-Big", strings.Repeat("h", 16<<10)); r.status != 431 {
		t.Errorf("16 KiB header: %d, want 431", r.status)
	}
	// Security headers on API answers.
	r := c.do("GET", "/v1/products/1", nil)
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"} {
		if !strings.HasPrefix(r.header.Get(h), want) {
			t.Errorf("%s = %q, want %q", h, r.header.Get(h), want)
		}
	}
	if v := r.header.Values("Referrer-Policy"); v != nil {
		t.Errorf("Referrer-Policy %q on JSON (an HTML response's header)", v)
	}
	if r.header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS on plain HTTP")
	}
}

// TestShutdownUnderLoad: SIGTERM during steady load. A balancer polls
// /readyz and stops sending when it fails; with a drain delay longer than
// its poll interval, no request fails at the client.
func TestShutdownUnderLoad(t *testing.T) {
	p, c, _ := startUp(t, "--drain-delay", "600ms", "--payment-latency", "150ms")
	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))
	var healthy atomic.Bool
	healthy.Store(true)
	balancerDone := make(chan struct{})
	go func() { // the load balancer's health check
		defer close(balancerDone)
		for {
			r, err := c.try("GET", "/readyz", nil)
			if err != nil || r.status != 200 {
				healthy.Store(false)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	var checkouts atomic.Int64
	for w := range 12 {
		wg.Go(func() {
			for i := 0; healthy.Load(); i++ {
				var r response
				var err error
				switch (w + i) % 4 {
				case 0:
					n := checkouts.Add(1)
					r, err = shopper.try("POST", "/v1/checkout", map[string]any{"payment_token": "tok_visa",
						"items": []map[string]int64{{"product_id": 1 + n%200, "quantity": 1}}}, "Idempotency-Key", fmt.Sprintf("drain-%d", n))
				case 1:
					r, err = shopper.try("PUT", fmt.Sprintf("/v1/cart/items/%d", 1+i%50), map[string]int{"quantity": 1})
				default:
					r, err = c.try("GET", fmt.Sprintf("/v1/products/%d", 1+i%300), nil)
				}
				if err != nil || r.status >= 500 {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%v %d %s", err, r.status, r.body))
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(time.Second) // steady load
	stopped := make(chan error, 1)
	go func() { stopped <- p.stop() }()
	<-balancerDone
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Errorf("run after SIGTERM = %v, want nil", err)
	}
	t.Logf("%d requests succeeded, %d failed, %d checkouts", ok.Load(), failed.Load(), checkouts.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during shutdown: %v", failed.Load(), failures[:min(5, len(failures))])
	}
	if ok.Load() < 50 {
		t.Errorf("only %d requests before shutdown; the load was not steady", ok.Load())
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(c.base, "http://"), time.Second); err == nil {
		t.Error("listener still accepts connections after shutdown")
	}
}

// TestTLSAndProtocols: HTTPS with HTTP/2 and HTTP/3 (Alt-Svc) from a
// self-signed certificate, and h2c on plain HTTP.
func TestTLSAndProtocols(t *testing.T) {
	dir := t.TempDir()
	args := append([]string{"up", "--addr", "127.0.0.1:0", "--data-dir", dir, "--tls-self-signed", "--http3", "--web=false"}, fastArgs...)
	p := start(t, nil, `api:\s+https://\S+`, args...)
	base := p.find(`api:\s+(https://\S+)`)
	insecure := &tls.Config{InsecureSkipVerify: true} // the test's own self-signed certificate
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: insecure, ForceAttemptHTTP2: true}}
	res, err := h2.Get(base + "/v1/products/1")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	port := base[strings.LastIndex(base, ":")+1:]
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Errorf("HTTPS GET: %d over %s, want 200 over HTTP/2", res.StatusCode, res.Proto)
	}
	if alt := res.Header.Get("Alt-Svc"); !strings.Contains(alt, `h3=":`+port+`"`) {
		t.Errorf("Alt-Svc %q, want h3 on port %s", alt, port)
	}
	if !strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("HSTS %q on TLS", res.Header.Get("Strict-Transport-Security"))
	}

	h3 := &http3.Transport{TLSClientConfig: insecure}
	defer h3.Close()
	c3 := &http.Client{Timeout: 10 * time.Second, Transport: h3}
	res, err = c3.Get(base + "/v1/products/1")
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 3 || !strings.Contains(string(b), `"id":1`) {
		t.Errorf("HTTP/3 GET: %d over %s: %.80s", res.StatusCode, res.Proto, b)
	}
	if err := p.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}

	_, c, _ := startUp(t, "--h2c", "--web=false")
	var prot http.Protocols
	prot.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &prot}}
	res, err = h2c.Get(c.base + "/v1/products/1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Errorf("h2c GET: %d over %s, want 200 over HTTP/2", res.StatusCode, res.Proto)
	}
	c.do("GET", "/v1/products/1", nil).want(t, 200, "HTTP/1.1 next to h2c")

	var out syncBuffer
	err = run(t.Context(), []string{"up", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--http3"}, func(string) string { return "" }, &out, &out)
	if code, ok := err.(exitError); !ok || code.code != 2 {
		t.Errorf("--http3 without TLS: %v, want a usage error", err)
	}
}

// TestDegradation: Redis dies and then the payment service stops in the
// middle of steady traffic. Nothing answers 500; checkouts fail fast with
// 503 + Retry-After once the breaker opens, and release their stock;
// browsing goes on. With both back, retries with the same keys succeed,
// and the invariants hold: stock adds up, nothing is left pending, every
// charge belongs to a paid order and no key was charged twice.
func TestDegradation(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis + payment outage; skipped in -short")
	}
	dir := t.TempDir()
	s := &stack{dsn: pgtest.NewDatabase(t), keys: filepath.Join(dir, "jwt-keys.json")}
	runOnce(t, append([]string{"seed", "--db", s.dsn}, fastArgs...)...)
	db, err := postgres.Open(context.Background(), s.dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s.db = db
	rs := redistest.StartServer(t)
	paydb := filepath.Join(dir, "payment.db")
	pay := start(t, nil, `payment: grpc://\S+`, "payment", "--listen", "127.0.0.1:0", "--data", paydb, "--payment-latency", "5ms")
	payAddr := pay.find(`payment: grpc://(\S+)`)
	api := start(t, nil, `api: http://\S+`, "api", "--addr", "127.0.0.1:0", "--db", s.dsn, "--redis", rs.URL(), "--redis-prefix", "deg:",
		"--payment-addr", payAddr, "--jwt-keys", s.keys, "--argon2-memory", "64", "--argon2-time", "1",
		"--payment-timeout", "500ms", "--payment-attempt-timeout", "200ms", "--breaker-open-for", "1s",
		"--pending-after", "1s", "--reconcile-interval", "200ms")
	c := newClient(t, api.find(`api: (http://\S+)`))
	shopper := c.as(c.login("shopper@brisk.test", "shopper-pass-1"))

	type attempt struct {
		key     string
		product int64
	}
	buy := func(a attempt) (response, error) {
		return shopper.try("POST", "/v1/checkout", map[string]any{"payment_token": "tok_visa",
			"items": []map[string]int64{{"product_id": a.product, "quantity": 1}}}, "Idempotency-Key", a.key)
	}
	var mu sync.Mutex
	statuses := map[string]map[int]int{}
	var refused []attempt
	var fast503 []time.Duration
	count := func(kind string, r response) {
		mu.Lock()
		defer mu.Unlock()
		if statuses[kind] == nil {
			statuses[kind] = map[int]int{}
		}
		statuses[kind][r.status]++
		if r.status >= 500 && r.status != 503 {
			t.Errorf("%s: %d %s", kind, r.status, r.body)
		}
		if r.status == 503 && r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", kind)
		}
	}
	var paymentDown atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch (w + i) % 3 {
				case 0:
					k := n.Add(1)
					a := attempt{fmt.Sprintf("deg-%d", k), 1 + k%40}
					t0 := time.Now()
					r, err := buy(a)
					if err != nil {
						t.Error(err)
						continue
					}
					count("checkout", r)
					if r.status == 503 {
						mu.Lock()
						refused = append(refused, a)
						if paymentDown.Load() {
							fast503 = append(fast503, time.Since(t0))
						}
						mu.Unlock()
					}
				case 1:
					r, err := shopper.try("PUT", fmt.Sprintf("/v1/cart/items/%d", 1+i%30), map[string]int{"quantity": 1})
					if err != nil {
						t.Error(err)
						continue
					}
					count("cart", r)
				default:
					r, err := c.try("GET", fmt.Sprintf("/v1/products/%d", 1+i%100), nil)
					if err != nil {
						t.Error(err)
						continue
					}
					count("browse", r)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	rs.Stop()
	time.Sleep(700 * time.Millisecond)
	if err := pay.stop(); err != nil {
		t.Fatal(err)
	}
	paymentDown.Store(true)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("statuses with Redis, then payment, down: %v", statuses)
	if statuses["checkout"][503] == 0 || statuses["cart"][503] == 0 {
		t.Errorf("no 503s for checkout or cart during the outages: %v", statuses)
	}
	if statuses["browse"][200] == 0 || statuses["browse"][503] != 0 {
		t.Errorf("browse during the outages: %v, want all 200", statuses["browse"])
	}
	quick := 0
	for _, d := range fast503 {
		if d < 100*time.Millisecond {
			quick++
		}
	}
	if quick == 0 {
		t.Errorf("no fast 503 with the payment service down (latencies %v)", fast503)
	}
	// With the breaker open, a checkout is refused without touching stock.
	before := stockOf(t, s, 77)
	open := attempt{"breaker-open", 77}
	r, err := buy(open)
	if err != nil {
		t.Fatal(err)
	}
	checkProblem(t, r, 503, "checkout with the breaker open")
	if st := stockOf(t, s, 77); st != before {
		t.Errorf("stock of product 77 after a refused checkout = %+v, was %+v", st, before)
	}

	// Both come back: the breaker lets trials through, clients retry with
	// their keys and get a final answer: their order, or, for a request
	// whose payment may have been sent before the outage, the decline the
	// reconciler stored after voiding it.
	rs.Start()
	start(t, nil, `payment: grpc://\S+`, "payment", "--listen", payAddr, "--data", paydb)
	deadline := time.Now().Add(15 * time.Second)
	final := map[int]int{}
	for _, a := range append(refused, open) {
		for {
			r, err := buy(a)
			if err != nil {
				t.Fatal(err)
			}
			if r.status == 201 || r.status == 402 && strings.Contains(string(r.body), "voided") {
				final[r.status]++
				break
			}
			if r.status != 503 && r.status != 409 || time.Now().After(deadline) {
				t.Fatalf("retry of %s: %d %s", a.key, r.status, r.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("retries of the %d refused checkouts: %v", len(refused)+1, final)
	if final[201] == 0 {
		t.Error("no refused checkout succeeded on retry")
	}
	waitNoPending(t, s, 15*time.Second)
	checkInvariants(t, s, paydb)
}

func stockOf(t *testing.T, s *stack, id int64) any {
	t.Helper()
	st, err := s.db.Stock(context.Background(), []int64{id})
	if err != nil || len(st) != 1 {
		t.Fatalf("Stock(%d) = %v, %v", id, st, err)
	}
	return st[0]
}

func waitNoPending(t *testing.T, s *stack, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pending, err := s.db.Pending(context.Background(), time.Now().Add(time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders still pending after %v", len(pending), within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkInvariants checks the stock books, and that every charge belongs
// to the one paid order of its key (a key may also have failed orders
// that were released before their payment was ever sent).
func checkInvariants(t *testing.T, s *stack, paydb string) {
	t.Helper()
	checkStockInvariant(t, s.db)
	rows, err := s.db.Pool().Query(context.Background(), `SELECT id, user_id, idempotency_key, status, payment_id FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	type ord struct {
		id, status, paymentID string
	}
	paidByKey := map[string][]ord{}
	for rows.Next() {
		var o ord
		var user int64
		var key string
		if err := rows.Scan(&o.id, &user, &key, &o.status, &o.paymentID); err != nil {
			t.Fatal(err)
		}
		if o.status == string(checkout.StatusPending) {
			t.Errorf("order %s still pending", o.id)
		}
		if o.status == string(checkout.StatusPaid) {
			pk := checkout.PaymentKey(user, key)
			paidByKey[pk] = append(paidByKey[pk], o)
		}
	}
	rows.Close()
	charges := 0
	for _, p := range payments(t, filepath.Dir(paydb)) {
		if !p.Charged() {
			continue
		}
		charges++
		paid := paidByKey[p.Key]
		if len(paid) != 1 || paid[0].paymentID != p.ID {
			t.Errorf("charge %s of key %s: paid orders %+v, want exactly one with this payment", p.ID, p.Key, paid)
		}
	}
	for k, os := range paidByKey {
		if len(os) != 1 {
			t.Errorf("key %s has %d paid orders", k, len(os))
		}
	}
	if charges != len(paidByKey) {
		t.Errorf("%d charges for %d paid orders", charges, len(paidByKey))
	}
	t.Logf("%d paid orders, %d charges", len(paidByKey), charges)
}
