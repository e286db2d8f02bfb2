package deploytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxPath finds Debian's nginx, or skips the test when it is missing
// outside CI (.ci/run installs it; under CI=true a missing nginx fails).
func nginxPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx not installed (apt-get install -y nginx)")
	}
	t.Skip("nginx not installed (apt-get install -y nginx); CI=true makes this a failure")
	return ""
}

// freePort returns a loopback address with a port nobody listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// selfSigned writes a certificate for localhost/127.0.0.1 and its key into
// dir (certs/brisk.crt, certs/brisk.key) and returns a pool trusting it.
func selfSigned(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "brisk edge test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "certs"), 0o755)
	os.WriteFile(filepath.Join(dir, "certs", "brisk.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "certs", "brisk.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// edge is deploy/nginx set up in a temporary prefix.
type edge struct {
	dir         string
	httpAddr    string // plain HTTP listener (redirects)
	httpsAddr   string
	roots       *x509.CertPool
	cmd         *exec.Cmd
	stableAddrs []string
}

// Upstream ports used in deploy/nginx/upstreams.conf, replaced by the test's.
var stablePorts, canaryPorts = []string{"8081", "8082", "8083"}, []string{"8091"}

// prepareEdge copies deploy/nginx into a temporary prefix with its own
// certificate, loopback listeners and the given upstream addresses (at
// most three stable, one canary; the canary's backup is the first stable).
func prepareEdge(t testing.TB, stable, canary []string) *edge {
	t.Helper()
	src := filepath.Join(repoRoot(t), "deploy", "nginx")
	dir := t.TempDir()
	for _, d := range []string{"logs", "temp", "cache"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	e := &edge{dir: dir, httpAddr: freePort(t), httpsAddr: freePort(t), stableAddrs: stable}
	e.roots = selfSigned(t, dir)
	addr := map[string]string{}
	for i, p := range stablePorts {
		if i < len(stable) {
			addr[p] = stable[i]
		}
	}
	for i, p := range canaryPorts {
		if i < len(canary) {
			addr[p] = canary[i]
		}
	}
	server := regexp.MustCompile(`(?m)^(\s*server\s+)127\.0\.0\.1:(\d+)(.*)$`)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		b, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		switch ent.Name() {
		case "upstreams.conf":
			s = server.ReplaceAllStringFunc(s, func(line string) string {
				m := server.FindStringSubmatch(line)
				a, ok := addr[m[2]]
				if !ok {
					return "" // fewer instances than the file lists
				}
				return m[1] + a + m[3]
			})
		case "nginx.conf":
			s = strings.Replace(s, "worker_processes auto;", "worker_processes 2;", 1)
		case "brisk.conf":
			s = strings.Replace(s, "listen 80 default_server;", "listen "+e.httpAddr+" default_server;", 1)
			s = strings.Replace(s, "listen 443 ssl http2 default_server;", "listen "+e.httpsAddr+" ssl http2 default_server;", 1)
			s = regexp.MustCompile(`(?m)^\s*listen \[::\]:.*$`).ReplaceAllString(s, "")
		}
		if err := os.WriteFile(filepath.Join(dir, ent.Name()), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(stable) > 0 && len(canary) == 0 {
		t.Fatal("prepareEdge: the canary pool needs an address")
	}
	return e
}

func (e *edge) args(extra ...string) []string {
	return append([]string{"-p", e.dir + "/", "-c", "nginx.conf", "-e", filepath.Join(e.dir, "logs", "error.log")}, extra...)
}

// start runs nginx in the foreground (as a child the test stops).
func (e *edge) start(t testing.TB) {
	t.Helper()
	e.cmd = exec.Command(nginxPath(t), e.args("-g", nginxGlobals())...)
	e.cmd.Stdout, e.cmd.Stderr = os.Stderr, os.Stderr
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(e.dir, "logs", "error.log"))
			t.Logf("nginx error.log:\n%s", tailString(string(b), 3000))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", e.httpsAddr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(e.dir, "logs", "error.log"))
			t.Fatalf("nginx not listening on %s: %v\n%s", e.httpsAddr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nginxGlobals are the -g directives of a test run: in the foreground,
// and as root (the usual test user) workers keep root too, since the
// temporary prefix is not readable by the default worker user (nobody).
func nginxGlobals() string {
	if os.Geteuid() == 0 {
		return "daemon off; user root;"
	}
	return "daemon off;"
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// client returns an HTTPS client that trusts the edge's certificate.
func (e *edge) client(h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: e.roots, ServerName: "localhost"},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 256,
		DisableCompression:  true,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *edge) url(path string) string { return "https://" + e.httpsAddr + path }

func TestNginxConfig(t *testing.T) {
	nginx := nginxPath(t)
	e := prepareEdge(t, []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}, []string{"127.0.0.1:4"})
	out, err := exec.Command(nginx, e.args("-t")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	// A broken config must fail the same check.
	os.WriteFile(filepath.Join(e.dir, "brisk.conf"), []byte("proxy_next_upstream sometimes;\n"), 0o644)
	if out, err := exec.Command(nginx, e.args("-t")...).CombinedOutput(); err == nil {
		t.Fatalf("nginx -t accepted a broken config:\n%s", out)
	}
}

func get(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}
