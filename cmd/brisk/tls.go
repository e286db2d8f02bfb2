package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// tlsFlags choose the API's transport: plain HTTP/1.1 (optionally with
// h2c, HTTP/2 without TLS, for a load balancer in front), or TLS with
// HTTP/2 and optionally HTTP/3 on the same port (UDP).
type tlsFlags struct {
	cert, key  string
	selfSigned bool
	h2c        bool
	http3      bool
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS with HTTP/2 (with --tls-key)")
	fs.StringVar(&f.key, "tls-key", "", "PEM private key file of --tls-cert")
	fs.BoolVar(&f.selfSigned, "tls-self-signed", false, "serve HTTPS with a generated self-signed certificate for localhost (dev only)")
	fs.BoolVar(&f.h2c, "h2c", false, "without TLS, also accept HTTP/2 in clear text (prior knowledge), e.g. behind a load balancer")
	fs.BoolVar(&f.http3, "http3", false, "with TLS, also serve HTTP/3 (QUIC) on the same port over UDP, announced with Alt-Svc")
}

// on reports whether the API serves TLS.
func (f *tlsFlags) on() bool { return f.selfSigned || f.cert != "" }

// scheme is the API's URL scheme.
func (f *tlsFlags) scheme() string {
	if f.on() {
		return "https"
	}
	return "http"
}

// check reports contradictory flags.
func (f *tlsFlags) check() error {
	switch {
	case (f.cert == "") != (f.key == ""):
		return usageError("--tls-cert and --tls-key go together")
	case f.cert != "" && f.selfSigned:
		return usageError("--tls-self-signed and --tls-cert exclude each other")
	case f.http3 && !f.on():
		return usageError("--http3 needs TLS (--tls-cert and --tls-key, or --tls-self-signed)")
	}
	return nil
}

// config returns the server's TLS configuration, nil without TLS.
func (f *tlsFlags) config(log *slog.Logger) (*tls.Config, error) {
	if !f.on() {
		return nil, nil
	}
	var cert tls.Certificate
	var err error
	if f.selfSigned {
		cert, err = selfSigned(time.Now())
		if err == nil {
			sum := sha256.Sum256(cert.Certificate[0])
			log.Warn("serving TLS with a self-signed certificate (dev only)", "sha256", hex.EncodeToString(sum[:]))
		}
	} else {
		cert, err = tls.LoadX509KeyPair(f.cert, f.key)
	}
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// selfSigned returns a fresh ECDSA P-256 certificate for localhost,
// 127.0.0.1 and ::1, valid for a year from now.
func selfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"brisk dev"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host, err := os.Hostname(); err == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// transport serves an http.Server on a listener with the chosen protocols.
type transport struct {
	tls  bool
	h3   *http3.Server
	udp  net.PacketConn
	errc chan error // the servers' Serve errors
}

// start serves srv on ln: HTTP/1.1 and h2c, or TLS with HTTP/2 (and
// HTTP/3 on ln's port over UDP, every TCP response carrying Alt-Svc).
// Serve errors arrive on the returned transport's errc.
func (f *tlsFlags) start(srv *http.Server, ln net.Listener, log *slog.Logger) (*transport, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	cfg, err := f.config(log)
	if err != nil {
		return nil, err
	}
	t := &transport{tls: cfg != nil, errc: make(chan error, 2)}
	var p http.Protocols
	p.SetHTTP1(true)
	if cfg != nil {
		p.SetHTTP2(true)
		srv.TLSConfig = cfg
	} else if f.h2c {
		p.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &p
	if cfg != nil && f.http3 {
		udp, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			return nil, fmt.Errorf("http3: listen on udp %s: %w", ln.Addr(), err)
		}
		t.udp = udp
		t.h3 = &http3.Server{
			Handler:        srv.Handler,
			TLSConfig:      http3.ConfigureTLSConfig(cfg.Clone()),
			MaxHeaderBytes: srv.MaxHeaderBytes,
			IdleTimeout:    srv.IdleTimeout,
			Logger:         log,
		}
		h3, next := t.h3, srv.Handler
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = h3.SetQUICHeaders(w.Header())
			next.ServeHTTP(w, r)
		})
		go func() {
			if err := h3.Serve(udp); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.errc <- fmt.Errorf("http3: %w", err)
			}
		}()
	}
	go func() {
		if t.tls {
			t.errc <- srv.ServeTLS(ln, "", "")
		} else {
			t.errc <- srv.Serve(ln)
		}
	}()
	return t, nil
}

// shutdown stops the HTTP/3 server gracefully (the TCP server is the
// caller's, with srv.Shutdown).
func (t *transport) shutdown(ctx context.Context) {
	if t.h3 == nil {
		return
	}
	if err := t.h3.Shutdown(ctx); err != nil {
		t.h3.Close()
	}
	t.udp.Close()
}
