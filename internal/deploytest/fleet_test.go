package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/chaos"
	"github.com/briskhq/brisk/internal/checkout"
	"github.com/briskhq/brisk/internal/payment"
	"github.com/briskhq/brisk/internal/postgres"
	"github.com/briskhq/brisk/internal/postgres/pgtest"
	"github.com/briskhq/brisk/internal/redis/redistest"
	"github.com/briskhq/brisk/internal/sqlite"
)

// fleet is several `brisk api` processes sharing one PostgreSQL database,
// one Redis, one payment service and one JWT key set.
type fleet struct {
	t    *testing.T
	bin  string
	dir  string
	args []string // common arguments of every instance
	inst []*apiProcess
}

// apiProcess is one `brisk api` child process on a fixed address (so that
// a restart comes back where NGINX expects it).
type apiProcess struct {
	addr string
	log  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

var apiReadyLine = regexp.MustCompile(`api: (http://\S+)`)

// start runs instance i and waits until it serves.
func (f *fleet) start(i int) {
	f.t.Helper()
	p := f.inst[i]
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	cmd := exec.Command(f.bin, append([]string{"api", "--addr", p.addr}, f.args...)...)
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	ready := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(out, sc.Text())
			if !sent && apiReadyLine.MatchString(sc.Text()) {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
		cmd.Wait()
		out.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	select {
	case ok := <-ready:
		if !ok {
			b, _ := os.ReadFile(p.log)
			f.t.Fatalf("instance %d exited before serving:\n%s", i, tailString(string(b), 3000))
		}
	case <-time.After(60 * time.Second):
		f.t.Fatalf("instance %d not serving after 60s", i)
	}
}

// signal sends sig to instance i.
func (f *fleet) signal(i int, sig syscall.Signal) {
	p := f.inst[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		f.t.Errorf("signal %v to instance %d: %v", sig, i, err)
	}
}

// wait waits for instance i to exit.
func (f *fleet) wait(i int, d time.Duration) bool {
	p := f.inst[i]
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (f *fleet) stopAll() {
	for i, p := range f.inst {
		p.mu.Lock()
		cmd, done := p.cmd, p.done
		p.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-done:
			continue
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if !f.wait(i, 20*time.Second) {
			cmd.Process.Kill()
			<-done
		}
	}
}

// startPayment serves the payment simulator on loopback gRPC in-process
// and returns its address and the simulator (whose records the invariant
// check reads).
func startPaymentService(t *testing.T, dir string) (string, *payment.Simulator) {
	store, err := payment.Open(filepath.Join(dir, "payment.db"), sqlite.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sim, err := payment.New(store, payment.Faults{Latency: 2 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := payment.NewServer(sim, slog.New(slog.DiscardHandler))
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String(), sim
}

// shopper is a signed-in account of the test.
type shopper struct {
	id    int
	token string
}

// call sends one request through the edge.
func call(c *http.Client, method, url, token string, body any, header ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Brisk-Track", "stable")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// TestFleetBehindNginx is the scale-out acceptance test: three `brisk api`
// processes (PostgreSQL, Redis, one payment service) behind the real NGINX
// with deploy/nginx, under a steady load of browsing, cart changes and
// checkouts. One instance gets SIGTERM (graceful drain), another kill -9
// and is started again. Then: no browse request failed, every cart holds
// what its last acknowledged change put there, every checkout key has at
// most one order and one charge (clients retry with the same
// Idempotency-Key), and brisk chaos's invariants hold.
func TestFleetBehindNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("builds brisk and runs a fleet for ~30s")
	}
	nginxPath(t)
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	redisURL, prefix := redistest.New(t)
	bin := brisk(t)
	dir := t.TempDir()

	// Schema, catalog and accounts.
	seed := exec.Command(bin, "seed", "--db", dsn, "--products", "300", "--argon2-memory", "64", "--argon2-time", "1",
		"--shopper-password", "shopper-pass-1", "--admin-password", "admin-pass-1")
	if out, err := seed.CombinedOutput(); err != nil {
		t.Fatalf("brisk seed: %v\n%s", err, out)
	}
	k, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "jwt-keys.json")
	if err := keys.Save(keyFile); err != nil {
		t.Fatal(err)
	}
	payAddr, sim := startPaymentService(t, dir)

	f := &fleet{t: t, bin: bin, dir: dir, args: []string{
		"--db", dsn, "--redis", redisURL, "--redis-prefix", prefix,
		"--payment-addr", payAddr, "--jwt-keys", keyFile, "--web=false",
		"--argon2-memory", "64", "--argon2-time", "1",
		"--drain-delay", "2s", "--shutdown-timeout", "10s",
		"--pending-after", "3s", "--reconcile-interval", "500ms",
		"--trusted-proxies", "127.0.0.1/32",
		// The test is about failover, not overload: no shedding or rate
		// limits on a loaded two-core machine.
		"--concurrency-limit", "off", "--rate-limit-ip", "off", "--rate-limit-user", "off",
		"--login-limit-ip", "off", "--login-limit-account", "off",
		"--log-level", "warn",
	}}
	for i := range 3 {
		f.inst = append(f.inst, &apiProcess{addr: freePort(t), log: filepath.Join(dir, fmt.Sprintf("api-%d.log", i))})
	}
	t.Cleanup(func() {
		f.stopAll()
		if t.Failed() {
			for i, p := range f.inst {
				b, _ := os.ReadFile(p.log)
				t.Logf("instance %d log:\n%s", i, tailString(string(b), 2000))
			}
		}
	})
	for i := range f.inst {
		f.start(i)
	}
	e := prepareEdge(t, []string{f.inst[0].addr, f.inst[1].addr, f.inst[2].addr}, []string{f.inst[0].addr})
	e.start(t)
	c := e.client(true)
	base := e.url("")

	// Accounts for the cart and checkout shoppers.
	var shoppers []shopper
	for i := range 6 {
		email := fmt.Sprintf("fleet-%d@brisk.test", i)
		status, body, err := call(c, "POST", base+"/v1/auth/register", "", map[string]string{"email": email, "password": "password-" + email})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("register %s: %d %s %v", email, status, body, err)
		}
		var s struct{ Token string }
		json.Unmarshal(body, &s)
		shoppers = append(shoppers, shopper{id: i, token: s.Token})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var (
		browseOK     atomic.Int64
		browseFailed atomic.Int64
		failMu       sync.Mutex
		failures     []string
	)
	failed := func(format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	// Browse: product pages and searches with a unique query (edge cache
	// misses, so every request crosses NGINX to an instance) and carts.
	var seq atomic.Int64
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				n := seq.Add(1)
				var path, token string
				switch n % 4 {
				case 0:
					// Distinct (word, limit) pairs: mostly edge cache misses.
					words := []string{"oak", "chair", "lamp", "steel", "linen", "desk", "blue", "table"}
					path = fmt.Sprintf("/v1/products?q=%s&limit=%d", words[n/4%8], 1+n/32%50)
				case 1:
					path, token = "/v1/cart", shoppers[0].token
				default:
					path = fmt.Sprintf("/v1/products/%d?n=%d", 1+r.IntN(300), n)
				}
				status, body, err := call(c, "GET", base+path, token, nil)
				if err != nil || status != http.StatusOK {
					browseFailed.Add(1)
					failed("GET %s at %s: %d %v %.200s", path, time.Now().Format("15:04:05.000"), status, err, body)
					continue
				}
				browseOK.Add(1)
			}
		}()
	}
	// Carts: two shoppers change quantities; an idempotent PUT that fails
	// is sent again. want is what each cart must hold in the end.
	want := make([]map[int64]int, 2)
	var cartRetries atomic.Int64
	for u := range 2 {
		want[u] = map[int64]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(40 * time.Millisecond):
				}
				pid, qty := int64(1+n%7), 1+n%3
				for attempt := 0; ; attempt++ {
					status, body, err := call(c, "PUT", fmt.Sprintf("%s/v1/cart/items/%d", base, pid), shoppers[1+u].token, map[string]int{"quantity": qty})
					if err == nil && status == http.StatusOK {
						want[u][pid] = qty
						break
					}
					cartRetries.Add(1)
					if attempt == 20 {
						failed("PUT cart item %d: gave up: %d %v %.200s", pid, status, err, body)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	// Checkouts: three shoppers, each key retried until a definitive
	// answer (201, or a 4xx other than "in flight").
	var (
		ackMu      sync.Mutex
		acked      []string
		coKeys     atomic.Int64
		coRetries  atomic.Int64
		coOutcomes sync.Map // status -> *atomic.Int64
	)
	for u := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(u), 2))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(150 * time.Millisecond):
				}
				key := fmt.Sprintf("fleet-%d-%d", u, n)
				coKeys.Add(1)
				body := map[string]any{"payment_token": "tok_visa", "items": []map[string]int64{{"product_id": int64(1 + r.IntN(300)), "quantity": 1}}}
				deadline := time.Now().Add(40 * time.Second)
				for {
					status, resp, err := call(c, "POST", base+"/v1/checkout", shoppers[3+u].token, body, "Idempotency-Key", key)
					retry := err != nil || status >= 500 || status == http.StatusConflict && bytes.Contains(resp, []byte("in flight"))
					if !retry {
						v, _ := coOutcomes.LoadOrStore(status, new(atomic.Int64))
						v.(*atomic.Int64).Add(1)
						if status == http.StatusCreated {
							var o struct{ ID string }
							json.Unmarshal(resp, &o)
							ackMu.Lock()
							acked = append(acked, o.ID)
							ackMu.Unlock()
						}
						break
					}
					coRetries.Add(1)
					if time.Now().After(deadline) {
						failed("checkout %s: no definitive answer in 40s: %d %v %.200s", key, status, err, resp)
						break
					}
					time.Sleep(250 * time.Millisecond)
				}
			}
		}()
	}

	// The failures, under load.
	time.Sleep(3 * time.Second)
	t.Logf("SIGTERM instance 1")
	f.signal(1, syscall.SIGTERM)
	time.Sleep(3 * time.Second)
	t.Logf("kill -9 instance 2")
	f.signal(2, syscall.SIGKILL)
	if !f.wait(2, 5*time.Second) {
		t.Fatal("instance 2 survived kill -9")
	}
	time.Sleep(time.Second)
	t.Logf("restart instance 2")
	f.start(2)
	if !f.wait(1, 20*time.Second) {
		t.Errorf("instance 1 did not exit within 20s of SIGTERM")
	}
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()

	// Carts survived.
	for u := range 2 {
		status, body, err := call(c, "GET", base+"/v1/cart", shoppers[1+u].token, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET cart: %d %v", status, err)
		}
		var cart struct {
			Items []struct {
				ProductID int64 `json:"product_id"`
				Quantity  int   `json:"quantity"`
			} `json:"items"`
		}
		json.Unmarshal(body, &cart)
		got := map[int64]int{}
		for _, it := range cart.Items {
			got[it.ProductID] = it.Quantity
		}
		if fmt.Sprint(got) != fmt.Sprint(want[u]) {
			t.Errorf("cart of shopper %d = %v, want %v", 1+u, got, want[u])
		}
	}

	// Orders settle (the reconciler finishes any order a kill left pending),
	// then the invariants of brisk chaos.
	db, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var orders []checkout.Order
	for deadline := time.Now().Add(30 * time.Second); ; {
		orders, err = db.AllOrders(ctx, "", 100000)
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, o := range orders {
			if o.Status == checkout.StatusPending {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	stock, err := db.Stock(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pays, err := sim.Payments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var charges []chaos.Charge
	for _, p := range pays {
		charges = append(charges, chaos.Charge{ID: p.ID, Key: p.Key, OrderID: p.OrderID, Status: p.Status})
	}
	snap := chaos.Snapshot{Stock: stock, Orders: orders, Charges: charges, Acknowledged: acked, TakenAt: time.Now()}
	violations := chaos.Check(snap, 15*time.Second)
	for _, v := range violations {
		t.Errorf("invariant broken: %s", v)
	}

	var outcomes []string
	coOutcomes.Range(func(k, v any) bool {
		outcomes = append(outcomes, fmt.Sprintf("%v=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("browse: %d ok, %d failed; cart PUT retries %d; checkout keys %d, client retries %d, outcomes %s, orders %d, charges %d",
		browseOK.Load(), browseFailed.Load(), cartRetries.Load(), coKeys.Load(), coRetries.Load(), strings.Join(outcomes, " "), len(orders), len(charges))
	for _, msg := range failures {
		t.Errorf("%s", msg)
	}
	if browseFailed.Load() > 0 {
		t.Errorf("%d browse requests failed, want none", browseFailed.Load())
	}
	if browseOK.Load() < 300 || len(acked) < 10 {
		t.Errorf("only %d browse requests and %d orders: the load did not run", browseOK.Load(), len(acked))
	}
}
