package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/problem"
	"github.com/briskhq/brisk/internal/redis"
	"github.com/briskhq/brisk/internal/redis/redistest"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    Limit
		str     string
		wantErr bool
	}{
		{"100/s", Limit{100, 100, time.Second}, "100/s", false},
		{"10/15m:10", Limit{10, 10, 15 * time.Minute}, "10/15m0s", false},
		{"5/m:20", Limit{5, 20, time.Minute}, "5/m:20", false},
		{"3/h", Limit{3, 3, time.Hour}, "3/h", false},
		{"off", Limit{}, "off", false},
		{"", Limit{}, "off", false},
		{"0", Limit{}, "off", false},
		{"100", Limit{}, "", true},
		{"x/s", Limit{}, "", true},
		{"-1/s", Limit{}, "", true},
		{"1/fortnight", Limit{}, "", true},
		{"1/s:0", Limit{}, "", true},
		{"1/-5s", Limit{}, "", true},
	}
	for _, tt := range tests {
		got, err := ParseLimit(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		if err == nil && got.String() != tt.str {
			t.Errorf("ParseLimit(%q).String() = %q, want %q", tt.in, got.String(), tt.str)
		}
	}
}

func TestLocalBucket(t *testing.T) {
	s := NewLocal(10)
	l := Limit{Rate: 1, Burst: 3, Period: time.Second}
	for i := range 3 {
		d, err := s.Allow(t.Context(), "k", l)
		if err != nil || !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("Allow #%d = %+v, %v; want allowed with %d remaining", i, d, err, 2-i)
		}
	}
	d, _ := s.Allow(t.Context(), "k", l)
	if d.Allowed || d.RetryAfter <= 900*time.Millisecond || d.RetryAfter > time.Second {
		t.Errorf("Allow past the burst = %+v, want denied with RetryAfter ~1s", d)
	}
	if d, _ := s.Allow(t.Context(), "other", l); !d.Allowed {
		t.Errorf("Allow(other key) = %+v, want allowed (own bucket)", d)
	}
}

// peer returns a handler that sets RemoteAddr (as the server would).
func peer(addr string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = addr
		h.ServeHTTP(w, r)
	})
}

var ok200 = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })

func userHeader(r *http.Request) (string, bool) {
	u := r.Header.Get("X-User")
	return u, u != ""
}

func TestRateLimitPerIPAndUser(t *testing.T) {
	clientIP := ClientIP(nil)
	mw := RateLimit(RateLimitConfig{Policies: []Policy{
		{Name: "ip", Limit: Limit{Rate: 3, Burst: 3, Period: time.Minute}, Key: ByIP(clientIP)},
		{Name: "user", Limit: Limit{Rate: 2, Burst: 2, Period: time.Minute}, Key: userHeader},
	}})
	h := mw(ok200)
	do := func(ip, user string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/products", nil)
		r.RemoteAddr = ip + ":1234"
		if user != "" {
			r.Header.Set("X-User", user)
		}
		w := httptest.NewRecorder()
		w.Header().Set("X-Request-Id", "req-1")
		h.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		name, ip, user string
		want           int
		policy         string // of the 429
	}{
		{"ip a 1", "10.0.0.1", "", 200, ""},
		{"ip a 2", "10.0.0.1", "", 200, ""},
		{"ip a 3", "10.0.0.1", "", 200, ""},
		{"ip a over", "10.0.0.1", "", 429, "ip"},
		{"ip b", "10.0.0.2", "", 200, ""},
		{"user 7 from c", "10.0.0.3", "7", 200, ""},
		{"user 7 from d", "10.0.0.4", "7", 200, ""},
		{"user 7 from e: user budget spent", "10.0.0.5", "7", 429, "user"},
		{"user 8 from e", "10.0.0.5", "8", 200, ""},
	}
	for _, tt := range tests {
		w := do(tt.ip, tt.user)
		if w.Code != tt.want {
			t.Fatalf("%s: status %d, want %d; body %s", tt.name, w.Code, tt.want, w.Body)
		}
		h := w.Header()
		if !strings.Contains(h.Get("RateLimit-Policy"), `"ip";q=3;w=60`) {
			t.Errorf("%s: RateLimit-Policy %q, want the ip policy", tt.name, h.Get("RateLimit-Policy"))
		}
		if tt.want == 200 {
			if !strings.HasPrefix(h.Get("RateLimit"), `"ip";r=`) {
				t.Errorf("%s: RateLimit %q", tt.name, h.Get("RateLimit"))
			}
			continue
		}
		if ra := h.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("%s: Retry-After %q, want seconds", tt.name, ra)
		}
		if want := fmt.Sprintf(`"%s";r=0;t=`, tt.policy); !strings.Contains(h.Get("RateLimit"), want) {
			t.Errorf("%s: RateLimit %q, want it to contain %s", tt.name, h.Get("RateLimit"), want)
		}
		var p problem.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != 429 || p.Type != problem.TypeRateLimited || p.RequestID != "req-1" {
			t.Errorf("%s: problem %s (%v)", tt.name, w.Body, err)
		}
		if ct := h.Get("Content-Type"); ct != problem.ContentType {
			t.Errorf("%s: Content-Type %q", tt.name, ct)
		}
	}
	// A user's headers name both policies that applied.
	w := do("10.0.0.9", "9")
	if got := w.Header().Get("RateLimit-Policy"); got != `"ip";q=3;w=60, "user";q=2;w=60` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
	if got := w.Header().Get("RateLimit"); !strings.HasPrefix(got, `"ip";r=2;t=`) || !strings.Contains(got, `, "user";r=1;t=`) {
		t.Errorf("RateLimit = %q", got)
	}
}

func TestRateLimitExemptAndOff(t *testing.T) {
	clientIP := ClientIP(nil)
	nets, _ := ParsePrefixes("127.0.0.0/8, ::1")
	h := RateLimit(RateLimitConfig{
		Policies: []Policy{
			{Name: "ip", Limit: Limit{Rate: 1, Burst: 1, Period: time.Hour}, Key: ByIP(clientIP)},
			{Name: "off", Limit: Limit{}, Key: ByIP(clientIP)},
		},
		Exempt: ExemptNetworks(clientIP, nets),
	})(ok200)
	for i := range 5 {
		for _, addr := range []string{"127.0.0.1:5", "[::1]:5"} {
			w := httptest.NewRecorder()
			peer(addr, h).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			if w.Code != 200 || w.Header().Get("RateLimit") != "" {
				t.Fatalf("exempt %s request %d: %d, RateLimit %q; want 200 unlimited", addr, i, w.Code, w.Header().Get("RateLimit"))
			}
		}
	}
	codes := []int{}
	for range 2 {
		w := httptest.NewRecorder()
		peer("192.0.2.1:5", h).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		codes = append(codes, w.Code)
	}
	if codes[0] != 200 || codes[1] != 429 {
		t.Errorf("non-exempt client: %v, want [200 429]", codes)
	}
}

func TestLoginAccountLimit(t *testing.T) {
	login := Route("POST", "/v1/auth/login")
	var got []string
	h := RateLimit(RateLimitConfig{Policies: []Policy{
		{Name: "login-account", Limit: Limit{Rate: 2, Burst: 2, Period: time.Minute}, Key: When(login, JSONField("email"))},
	}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
	}))
	post := func(path, body string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
		return w.Code
	}
	long := `{"email":"ann@example.com","password":"x"` + strings.Repeat(" ", 9000) + `}`
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"ann 1", "/v1/auth/login", `{"email":"ann@example.com","password":"a"}`, 200},
		{"ANN 2 (same account)", "/v1/auth/login", `{"email":" ANN@example.com ","password":"b"}`, 200},
		{"ann 3", "/v1/auth/login", `{"email":"ann@example.com","password":"c"}`, 429},
		{"bob", "/v1/auth/login", `{"email":"bob@example.com","password":"a"}`, 200},
		{"no email: handler rejects it", "/v1/auth/login", `{"password":"a"}`, 200},
		{"other route", "/v1/auth/register", `{"email":"ann@example.com"}`, 200},
		{"padded body 1", "/v1/auth/login", long, 200},
		{"padded body 2", "/v1/auth/login", long, 200},
		{"padded body 3: padding shares one bucket", "/v1/auth/login", long, 429},
	}
	for _, tt := range tests {
		if code := post(tt.path, tt.body); code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.want)
		}
	}
	// Handlers still read whole bodies.
	for _, b := range got {
		if !strings.HasSuffix(b, "}") {
			t.Errorf("handler read a cut body: %.60q...", b)
		}
	}
	if got[len(got)-1] != long {
		t.Errorf("padded body reached the handler cut to %d bytes, want %d", len(got[len(got)-1]), len(long))
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ip := ClientIP(trusted)
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "192.0.2.7:1000", nil, "192.0.2.7"},
		{"untrusted peer's XFF is ignored", "192.0.2.7:1000", []string{"198.51.100.1"}, "192.0.2.7"},
		{"trusted proxy", "10.1.2.3:1000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"forged left entries skipped", "10.1.2.3:1000", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several headers", "127.0.0.1:1000", []string{"6.6.6.6", "198.51.100.2"}, "198.51.100.2"},
		{"all trusted", "10.1.2.3:1000", []string{"10.0.0.5"}, "10.0.0.5"},
		{"no header", "10.1.2.3:1000", nil, "10.1.2.3"},
		{"ipv6 mapped", "[::ffff:192.0.2.9]:1000", nil, "192.0.2.9"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ip(r); got != netip.MustParseAddr(tt.want) {
			t.Errorf("%s: ClientIP = %v, want %s", tt.name, got, tt.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8:1:2:3:4:5:6]:80"
	if k, _ := ByIP(ip)(r); k != "2001:db8:1:2::/64" {
		t.Errorf("ByIP(ipv6) = %q, want its /64", k)
	}
}

// TestSharedBudget: two API instances, each with its own Redis client and
// middleware, draw from one GCRA budget per client.
func TestSharedBudget(t *testing.T) {
	url, prefix := redistest.New(t)
	limit := Limit{Rate: 10, Burst: 10, Period: time.Minute}
	instance := func() http.Handler {
		c, err := redis.Open(t.Context(), url, nil, redis.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return RateLimit(RateLimitConfig{
			Policies: []Policy{{Name: "ip", Limit: limit, Key: ByIP(ClientIP(nil))}},
			Store:    NewShared(redis.NewLimiter(c), NewLocal(100)),
		})(ok200)
	}
	a, b := instance(), instance()
	allowed := 0
	for i := range 30 {
		h := a
		if i%2 == 1 {
			h = b
		}
		w := httptest.NewRecorder()
		peer("192.0.2.1:1", h).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if w.Code == 200 {
			allowed++
		}
	}
	if allowed != limit.Burst {
		t.Errorf("two instances allowed %d of 30 requests, want the shared budget of %d", allowed, limit.Burst)
	}
}

// TestSharedFallback: with Redis unreachable the local fallback decides,
// quickly.
func TestSharedFallback(t *testing.T) {
	c, err := redis.New("redis://127.0.0.1:1/0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := RateLimit(RateLimitConfig{
		Policies: []Policy{{Name: "ip", Limit: Limit{Rate: 2, Burst: 2, Period: time.Minute}, Key: ByIP(ClientIP(nil))}},
		Store:    NewShared(redis.NewLimiter(c), NewLocal(100)),
	})(ok200)
	var codes []int
	start := time.Now()
	for range 3 {
		w := httptest.NewRecorder()
		peer("192.0.2.1:1", h).ServeHTTP(w, httptest.NewRequest("GET", "/", nil).WithContext(context.Background()))
		codes = append(codes, w.Code)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("with Redis down: %v, want the local fallback's [200 200 429]", codes)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("3 requests with Redis down took %v", took)
	}
}

func TestBearerUser(t *testing.T) {
	calls := 0
	key := BearerUser(func(tok string) (string, time.Time, error) {
		calls++
		switch tok {
		case "good":
			return "42", time.Now().Add(time.Hour), nil
		case "expiring":
			return "43", time.Now().Add(20 * time.Millisecond), nil
		}
		return "", time.Time{}, fmt.Errorf("bad token")
	})
	get := func(authz string) (string, bool) {
		r := httptest.NewRequest("GET", "/", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		return key(r)
	}
	tests := []struct {
		authz, want string
		ok          bool
		wantCalls   int
	}{
		{"", "", false, 0},
		{"Basic x", "", false, 0},
		{"Bearer bad", "", false, 1},
		{"Bearer good", "42", true, 2},
		{"Bearer good", "42", true, 2}, // remembered
		{"Bearer expiring", "43", true, 3},
	}
	for _, tt := range tests {
		got, ok := get(tt.authz)
		if got != tt.want || ok != tt.ok || calls != tt.wantCalls {
			t.Errorf("key(%q) = %q, %v after %d verifications; want %q, %v after %d", tt.authz, got, ok, calls, tt.want, tt.ok, tt.wantCalls)
		}
	}
	time.Sleep(30 * time.Millisecond)
	if _, ok := get("Bearer expiring"); !ok || calls != 4 {
		t.Errorf("expired token not verified again (%d verifications)", calls)
	}
}
