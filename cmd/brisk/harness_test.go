package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe buffer for a run's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one in-process run of the brisk command.
type proc struct {
	t      *testing.T
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// start runs `brisk args...` in-process and waits until stdout matches
// ready. env backs getenv.
func start(t *testing.T, env map[string]string, ready string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	getenv := func(k string) string { return env[k] }
	go func() { p.done <- run(ctx, args, getenv, p.stdout, p.stderr) }()
	re := regexp.MustCompile(ready)
	deadline := time.Now().Add(30 * time.Second)
	for !re.MatchString(p.stdout.String()) {
		select {
		case err := <-p.done:
			t.Fatalf("brisk %s exited early: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, p.stdout, tail(p.stderr.String()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("brisk %s not ready after 30s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, tail(p.stderr.String()))
		}
	}
	t.Cleanup(func() { p.stop() })
	return p
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// stop cancels the run (as SIGTERM does) and returns its error.
func (p *proc) stop() error {
	p.cancel()
	select {
	case err := <-p.done:
		p.done <- err // keep it for a second stop
		if err != nil {
			p.t.Logf("stderr:\n%s", tail(p.stderr.String()))
		}
		return err
	case <-time.After(30 * time.Second):
		p.t.Fatalf("brisk did not stop within 30s")
		return nil
	}
}

// find returns the first submatch of re in stdout.
func (p *proc) find(re string) string {
	p.t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(p.stdout.String())
	if m == nil {
		p.t.Fatalf("stdout has no %q:\n%s", re, p.stdout)
	}
	return m[1]
}

// client talks to a running API.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func newClient(t *testing.T, base string) *client {
	return &client{t: t, base: base, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 200}}}
}

func (c *client) as(token string) *client {
	c2 := *c
	c2.token = token
	return &c2
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; body may be nil, a string (sent as is) or a value
// (JSON). A transport error fails the test: call it from the test goroutine.
func (c *client) do(method, path string, body any, header ...string) response {
	c.t.Helper()
	r, err := c.try(method, path, body, header...)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// try is do for other goroutines: a transport error is returned (status 0).
func (c *client) try(method, path string, body any, header ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// want fails the test unless r has the given status.
func (r response) want(t *testing.T, status int, what string) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
	return r
}

type session struct {
	Token string `json:"token"`
	User  struct {
		ID   int64  `json:"id"`
		Role string `json:"role"`
	} `json:"user"`
}

func (c *client) login(email, password string) string {
	c.t.Helper()
	var s session
	c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}).want(c.t, 200, "login "+email).json(c.t, &s)
	return s.Token
}

func (c *client) register(email string) string {
	c.t.Helper()
	var s session
	c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "password-" + email}).want(c.t, 201, "register "+email).json(c.t, &s)
	return s.Token
}

// fastArgs keep password hashing cheap and the catalog small in tests.
var fastArgs = []string{"--argon2-memory", "64", "--argon2-time", "1", "--products", "300",
	"--shopper-password", "shopper-pass-1", "--admin-password", "admin-pass-1"}

// startUp runs `brisk up` on a free port in a temporary data dir.
func startUp(t *testing.T, extra ...string) (*proc, *client, string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"up", "--addr", "127.0.0.1:0", "--data-dir", dir}, fastArgs...)
	p := start(t, nil, `api:\s+http://\S+`, append(args, extra...)...)
	base := p.find(`api:\s+(http://\S+)`)
	return p, newClient(t, base), dir
}

// runOnce runs a command that finishes by itself (seed, migrate) and
// returns its stdout; an error fails the test.
func runOnce(t *testing.T, args ...string) string {
	t.Helper()
	var out, errs syncBuffer
	if err := run(t.Context(), args, func(string) string { return "" }, &out, &errs); err != nil {
		t.Fatalf("brisk %s: %v\n%s\n%s", strings.Join(args, " "), err, out.String(), tail(errs.String()))
	}
	return out.String()
}
