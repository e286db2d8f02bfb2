package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"text/template"
)

//go:embed static templates
var files embed.FS

// gzipMin is the smallest body worth compressing: below about one TCP
// segment gzip saves no round trip and costs CPU on both ends.
const gzipMin = 1400

// immutable is the Cache-Control of content-hashed assets: their URL
// changes whenever their bytes do.
const immutable = "public, max-age=31536000, immutable"

// asset is one static file, ready to serve.
type asset struct {
	name  string // logical name: "app.css"
	url   string // hashed URL: "/static/app.3f2a1b9c0d.css"
	ctype string
	body  []byte
	gz    []byte // nil when compressing does not pay
	etag  string
}

// assetSet is every static file, by logical name and by hashed file name.
type assetSet struct {
	byName map[string]*asset
	byFile map[string]*asset
	sw     *asset // the Service Worker, at /sw.js, never hashed
}

// loadAssets reads the embedded static files, names each after a hash of
// its bytes, compresses the ones that shrink and builds the Service Worker
// that precaches them.
func loadAssets() (*assetSet, error) {
	s := &assetSet{byName: map[string]*asset{}, byFile: map[string]*asset{}}
	entries, err := fs.ReadDir(files, "static")
	if err != nil {
		return nil, fmt.Errorf("read assets: %w", err)
	}
	for _, e := range entries {
		b, err := files.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read asset %s: %w", e.Name(), err)
		}
		a := newAsset(e.Name(), b)
		ext := path.Ext(a.name)
		file := strings.TrimSuffix(a.name, ext) + "." + a.etag[1:11] + ext
		a.url = "/static/" + file
		s.byName[a.name] = a
		s.byFile[file] = a
	}
	sw, err := s.serviceWorker()
	if err != nil {
		return nil, err
	}
	s.sw = sw
	return s, nil
}

func newAsset(name string, b []byte) *asset {
	sum := sha256.Sum256(b)
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	a := &asset{name: name, ctype: ctype, body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	if len(b) >= gzipMin && compressible(ctype) {
		if gz := gzipBytes(b); len(gz) < len(b)*9/10 {
			a.gz = gz
		}
	}
	return a
}

func compressible(ctype string) bool {
	for _, p := range []string{"text/", "application/javascript", "text/javascript", "image/svg", "application/json", "application/manifest"} {
		if strings.HasPrefix(ctype, p) {
			return true
		}
	}
	return false
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	_, _ = zw.Write(b)                                       // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}

// URL returns the hashed URL of a logical asset name; an unknown name is
// an error, so that a template naming one fails to render (and its test).
func (s *assetSet) URL(name string) (string, error) {
	a, ok := s.byName[name]
	if !ok {
		return "", fmt.Errorf("unknown asset %q", name)
	}
	return a.url, nil
}

// urls returns the hashed URLs of every asset, sorted.
func (s *assetSet) urls() []string {
	var us []string
	for _, a := range s.byName {
		us = append(us, a.url)
	}
	sort.Strings(us)
	return us
}

// serviceWorker renders templates/sw.js with the list of asset URLs; its
// cache name is derived from them, so a deploy with new assets gets a new
// cache and the old one is deleted on activation.
func (s *assetSet) serviceWorker() (*asset, error) {
	src, err := files.ReadFile("templates/sw.js")
	if err != nil {
		return nil, fmt.Errorf("read sw.js: %w", err)
	}
	t, err := template.New("sw").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse sw.js: %w", err)
	}
	urls := s.urls()
	sum := sha256.Sum256([]byte(strings.Join(urls, "\n")))
	var buf bytes.Buffer
	quoted := make([]string, len(urls))
	for i, u := range urls {
		quoted[i] = fmt.Sprintf("%q", u)
	}
	err = t.Execute(&buf, map[string]string{
		"Version": hex.EncodeToString(sum[:6]),
		"Assets":  strings.Join(quoted, ",\n  "),
	})
	if err != nil {
		return nil, fmt.Errorf("render sw.js: %w", err)
	}
	return newAsset("sw.js", buf.Bytes()), nil
}

// serve writes a, compressed when the client accepts gzip.
func (a *asset) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("Cache-Control", cacheControl)
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", referrerPolicy) // a stylesheet's own requests follow it, as a page's do
	if a.gz != nil {
		hd.Set("Vary", "Accept-Encoding")
	}
	if etagMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// static serves /static/{name}: hashed names only, immutable.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets.byFile[r.PathValue("name")]
	if !ok {
		http.Error(w, "no such asset", http.StatusNotFound)
		return
	}
	a.serve(w, r, immutable)
}

// serviceWorker serves /sw.js. Browsers revalidate it on navigation; no-cache
// makes every check a conditional request answered 304 while unchanged.
// The worker runs under the CSP of its own response, which must let it
// fetch the assets (the API's default CSP allows nothing).
func (h *Handler) serviceWorker(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Service-Worker-Allowed", "/")
	w.Header().Set("Content-Security-Policy", csp)
	h.assets.sw.serve(w, r, "no-cache")
}

func (h *Handler) favicon(w http.ResponseWriter, r *http.Request) {
	h.assets.byName["icon.svg"].serve(w, r, "public, max-age=86400")
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") || strings.TrimSpace(coding) == "*" {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}

// etagMatch implements If-None-Match's weak comparison against one tag.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
