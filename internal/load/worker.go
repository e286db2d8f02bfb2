package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

const userAgent = "brisk-load"

// Fixed request bodies, shared by every request that sends them.
var quantityBodies = [][]byte{
	[]byte(`{"quantity":1}`),
	[]byte(`{"quantity":2}`),
	[]byte(`{"quantity":3}`),
}

// newHostClient returns the HTTP/1.1 client of a run: keep-alive
// connections to the target, at most conns of them, and the per-request
// timeout. fasthttp's client costs about a third of the CPU per request
// of net/http's, which keeps the generator from being the bottleneck when
// it shares a small machine with the server under test.
func newHostClient(target *url.URL, conns int, timeout time.Duration) *fasthttp.HostClient {
	addr := target.Host
	if target.Port() == "" {
		if target.Scheme == "https" {
			addr = net.JoinHostPort(target.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(target.Hostname(), "80")
		}
	}
	return &fasthttp.HostClient{
		Addr:                addr,
		Name:                userAgent,
		IsTLS:               target.Scheme == "https",
		MaxConns:            conns,
		MaxConnWaitTimeout:  timeout,
		MaxIdleConnDuration: 30 * time.Second,
		ReadTimeout:         timeout,
		WriteTimeout:        timeout,
		MaxResponseBodySize: 16 << 20,
		// Resend only what the server cannot have acted on: a request on
		// a kept-alive connection that the server had closed, when
		// replaying it is safe.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			safe := req.Header.IsGet() || req.Header.IsPut() || req.Header.IsDelete() || len(req.Header.Peek("Idempotency-Key")) > 0
			stale := errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed)
			return false, safe && stale
		},
	}
}

// user is a virtual shopper with its own account and token.
type user struct {
	email     string
	password  string
	loginBody []byte                 // fixed login request body
	auth      atomic.Pointer[string] // "Bearer <token>"; replaced on login
}

func (u *user) setToken(token string) {
	a := "Bearer " + token
	u.auth.Store(&a)
}

// worker sends requests one at a time with its own random source, request,
// response and scratch buffers: the hot path allocates nothing and shares
// nothing but the recorders.
type worker struct {
	r    *runner
	rng  *mrand.Rand
	zipf *mrand.Zipf
	req  *fasthttp.Request
	resp *fasthttp.Response
	uri  []byte // scratch: request URI
	buf  []byte // scratch: request body, idempotency key
}

func newWorker(r *runner, id int) *worker {
	rng := mrand.New(mrand.NewPCG(r.cfg.Seed, uint64(id)))
	return &worker{
		r:    r,
		rng:  rng,
		zipf: mrand.NewZipf(rng, r.cfg.ZipfS, 1, uint64(r.cfg.Products-1)),
		req:  new(fasthttp.Request),
		resp: new(fasthttp.Response),
		uri:  make([]byte, 0, 128),
		buf:  make([]byte, 0, 128),
	}
}

// productID draws a product id in 1..Products, Zipf distributed: id 1 is
// the most popular.
func (w *worker) productID() int64 { return int64(w.zipf.Uint64()) + 1 }

func (w *worker) user() *user { return w.r.users[w.rng.IntN(len(w.r.users))] }

// setURI sets the request URI to the target's base, path, an optional
// product id and an optional query.
func (w *worker) setURI(path string, id int64, query string) {
	b := append(w.uri[:0], w.r.base...)
	b = append(b, path...)
	if id > 0 {
		b = strconv.AppendInt(b, id, 10)
	}
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	w.uri = b
	w.req.SetRequestURIBytes(b)
}

// do sends the request for j and returns the response status.
func (w *worker) do(j job) (int, error) {
	r, req := w.r, w.req
	req.Reset()
	switch j.op {
	case opProduct:
		w.setURI("/v1/products/", w.productID(), "")
	case opSearch:
		w.setURI("/v1/products", 0, r.queries[w.rng.IntN(len(r.queries))])
	case opCartPut:
		req.Header.SetMethod(http.MethodPut)
		w.setURI("/v1/cart/items/", w.productID(), "")
		req.Header.Set("Authorization", *w.user().auth.Load())
		req.Header.SetContentType("application/json")
		req.SetBody(quantityBodies[w.rng.IntN(len(quantityBodies))])
	case opCartGet:
		w.setURI("/v1/cart", 0, "")
		req.Header.Set("Authorization", *w.user().auth.Load())
	case opCartDel:
		req.Header.SetMethod(http.MethodDelete)
		w.setURI("/v1/cart/items/", w.productID(), "")
		req.Header.Set("Authorization", *w.user().auth.Load())
	case opLogin:
		u := w.user()
		req.Header.SetMethod(http.MethodPost)
		w.setURI("/v1/auth/login", 0, "")
		req.Header.SetContentType("application/json")
		req.SetBody(u.loginBody)
		status, err := w.send()
		if err == nil && status == http.StatusOK {
			if tok := parseToken(w.resp.Body()); tok != "" {
				u.setToken(tok)
			}
		}
		return status, err
	case opCheckout:
		req.Header.SetMethod(http.MethodPost)
		w.setURI("/v1/checkout", 0, "")
		req.Header.Set("Authorization", *w.user().auth.Load())
		req.Header.SetContentType("application/json")
		b := append(w.buf[:0], "load-"...)
		b = append(b, r.cfg.RunID...)
		b = append(b, '-')
		b = strconv.AppendUint(b, j.seq, 10)
		req.Header.SetBytesV("Idempotency-Key", b)
		b = append(b[:0], `{"payment_token":"tok_visa","items":[{"product_id":`...)
		b = strconv.AppendInt(b, w.productID(), 10)
		b = append(b, `,"quantity":1}]}`...)
		req.SetBody(b) // copies
		w.buf = b
		status, err := w.send()
		if err == nil && status == http.StatusCreated {
			if id := parseOrderID(w.resp.Body()); id != nil {
				r.recordOrder(id)
			}
		}
		return status, err
	default:
		return 0, fmt.Errorf("unknown op %d", j.op)
	}
	return w.send()
}

// send sends the prepared request and reads the whole response.
func (w *worker) send() (int, error) {
	if err := w.r.hc.Do(w.req, w.resp); err != nil {
		return 0, err
	}
	return w.resp.StatusCode(), nil
}

func parseToken(b []byte) string {
	var v struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.Token
}

// parseOrderID returns the "id" of an order, a string or a number.
func parseOrderID(b []byte) []byte {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(b, &v) != nil || len(v.ID) == 0 || string(v.ID) == "null" {
		return nil
	}
	if v.ID[0] == '"' {
		var s string
		if json.Unmarshal(v.ID, &s) != nil || s == "" {
			return nil
		}
		return []byte(s)
	}
	return v.ID
}

// registerUsers registers cfg.Users accounts, eight at a time, and signs
// them in. An account that already exists is logged in to instead.
func (r *runner) registerUsers(ctx context.Context) ([]*user, error) {
	users := make([]*user, r.cfg.Users)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range users {
		g.Go(func() error {
			u, err := r.registerUser(gctx, i)
			users[i] = u
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return users, nil
}

func (r *runner) registerUser(ctx context.Context, i int) (*user, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u := &user{
		email:    fmt.Sprintf("load-%s-%d@example.test", r.cfg.RunID, i),
		password: randomHex(12),
	}
	u.loginBody, _ = json.Marshal(map[string]string{"email": u.email, "password": u.password})
	reg, _ := json.Marshal(map[string]string{"email": u.email, "password": u.password, "name": fmt.Sprintf("Load User %d", i)})
	status, body, err := r.postJSON("/v1/auth/register", reg)
	if err == nil && status == http.StatusConflict {
		status, body, err = r.postJSON("/v1/auth/login", u.loginBody)
	}
	if err != nil {
		return nil, fmt.Errorf("register load user %s: %w", u.email, err)
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return nil, fmt.Errorf("register load user %s: status %d: %.200s", u.email, status, body)
	}
	tok := parseToken(body)
	if tok == "" {
		return nil, fmt.Errorf("register load user %s: no token in response: %.200s", u.email, body)
	}
	u.setToken(tok)
	return u, nil
}

// postJSON is the unhurried request path used during setup.
func (r *runner) postJSON(path string, body []byte) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI(r.base + path)
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	if err := r.hc.Do(req, resp); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}
