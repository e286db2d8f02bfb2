package web

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

// referrerPolicy is the pages' and assets' Referrer-Policy: the full
// referrer on the storefront's own requests, none to other origins.
const referrerPolicy = "same-origin"

// csp allows only same-origin scripts, styles and requests: no inline
// script can run, which protects the token kept in localStorage.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'; object-src 'none'"

// view is what a page template gets.
type view struct {
	Title  string // <title> and <h1>
	Page   string // data-page of <body>: which script part runs
	Q      string // the search box's value
	Status int    // HTTP status; 0 is 200
	Data   any    // page-specific
	// CacheControl of the page; empty: "no-cache" (revalidate every time).
	CacheControl string
}

// parsePages parses templates/layout.html together with each page template.
func parsePages(assets *assetSet) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"asset":   assets.URL,
		"price":   formatPrice,
		"swatch":  func(id int64) int64 { return id % 8 },
		"catName": catalog.CategoryName,
		"initial": func(s string) string {
			if s == "" {
				return "?"
			}
			return strings.ToUpper(s[:1])
		},
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return pages, nil
}

// formatPrice formats money for people: "$12.34", or "12.34 EUR".
func formatPrice(m money.Money) string {
	sign, a := "", m.Amount
	if a < 0 {
		sign, a = "-", -a
	}
	units := strconv.FormatInt(a/100, 10)
	// Group thousands: 1234567 -> 1,234,567.
	for i := len(units) - 3; i > 0; i -= 3 {
		units = units[:i] + "," + units[i:]
	}
	if m.Currency == "USD" {
		return fmt.Sprintf("%s$%s.%02d", sign, units, a%100)
	}
	return fmt.Sprintf("%s%s.%02d %s", sign, units, a%100, m.Currency)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var gzPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression) // the level is valid
	return zw
}}

// render executes the page template tmpl with v and writes it.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, tmpl string, v view) {
	t, ok := h.pages[tmpl]
	if !ok {
		h.log.ErrorContext(r.Context(), "web: no template", "template", tmpl)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := t.ExecuteTemplate(buf, "layout", v); err != nil {
		h.log.ErrorContext(r.Context(), "web: render", "template", tmpl, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	status := v.Status
	if status == 0 {
		status = http.StatusOK
	}
	cc := v.CacheControl
	if cc == "" {
		cc = "no-cache"
	}
	writeHTML(w, r, status, buf.Bytes(), cc)
}

// writeHTML sends an HTML page with security headers, a strong ETag (304
// on If-None-Match for 200s) and gzip above gzipMin when accepted.
func writeHTML(w http.ResponseWriter, r *http.Request, status int, body []byte, cacheControl string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", referrerPolicy)
	hd.Set("Vary", "Accept-Encoding")
	if status != http.StatusOK {
		hd.Set("Cache-Control", "no-store")
	} else {
		hd.Set("Cache-Control", cacheControl)
		f := fnv.New64a()
		_, _ = f.Write(body)
		etag := `"` + strconv.FormatUint(f.Sum64(), 36) + `"`
		hd.Set("ETag", etag)
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if len(body) < gzipMin || !acceptsGzip(r) {
		hd.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
		return
	}
	zbuf := bufPool.Get().(*bytes.Buffer)
	zbuf.Reset()
	defer bufPool.Put(zbuf)
	zw := gzPool.Get().(*gzip.Writer)
	zw.Reset(zbuf)
	_, _ = zw.Write(body) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	gzPool.Put(zw)
	hd.Set("Content-Encoding", "gzip")
	hd.Set("Content-Length", strconv.Itoa(zbuf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(zbuf.Bytes())
	}
}

// pageFunc builds the view of a page, or returns an error to show.
type pageFunc func(r *http.Request) (string, view, error)

// page adapts a pageFunc: errors become an error page with the status of
// their kind.
func (h *Handler) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tmpl, v, err := fn(r)
		if err != nil {
			status, msg := errorStatus(err)
			if status >= 500 {
				h.log.ErrorContext(r.Context(), "web: page", "path", r.URL.Path, "err", err)
			}
			w.Header().Set("Cache-Control", "no-store")
			if status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			h.render(w, r, "error", view{Title: http.StatusText(status), Status: status, Data: msg, Q: r.URL.Query().Get("q")})
			return
		}
		h.render(w, r, tmpl, v)
	})
}

// errorStatus maps a domain error to an HTTP status and a message for people.
func errorStatus(err error) (int, string) {
	var de *derrors.Error
	detail := "Something went wrong on our side. Please try again."
	if errors.As(err, &de) {
		detail = de.Detail
	}
	switch {
	case errors.Is(err, derrors.NotFound):
		return http.StatusNotFound, detail
	case errors.Is(err, derrors.Invalid):
		return http.StatusBadRequest, detail
	case errors.Is(err, derrors.Unavailable):
		return http.StatusServiceUnavailable, "The shop is busy right now. Please try again in a moment."
	}
	return http.StatusInternalServerError, "Something went wrong on our side. Please try again."
}

// shell serves a page whose content the page's script loads from the API.
func (h *Handler) shell(page, title string) http.Handler {
	return h.page(func(r *http.Request) (string, view, error) {
		return page, view{Title: title, Page: page, Q: r.URL.Query().Get("q")}, nil
	})
}
