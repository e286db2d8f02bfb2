package cache

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzhttp"
)

// Header values shared by every response (cap == len: see Entry).
var (
	jsonType       = []string{"application/json"}
	varyEncoding   = []string{"Accept-Encoding"}
	gzipEncoding   = []string{"gzip"}
	noCacheControl = []string{"no-cache"}
)

// CacheControl returns a Cache-Control header value for Write. Build it
// once (a package variable): Write then sets it without allocating.
func CacheControl(v string) []string { return []string{v} }

// Write sends res as a public JSON response: its strong ETag,
// cacheControl (from CacheControl), Vary: Accept-Encoding, and the gzip
// variant when there is one and the client accepts gzip. It answers 304
// when If-None-Match names either representation's ETag. A stale result
// (stale-if-error) carries Age, the seconds since it was computed, which
// is past max-age, so browsers and CDNs revalidate it. A hit does no
// encoding work: every header value was built when the entry was filled.
// It returns the status and the number of body bytes written.
func Write(w http.ResponseWriter, r *http.Request, res Result, cacheControl []string) (status int, n int) {
	return write(w, r, res, cacheControl, true)
}

// autoLength is the largest body net/http sends with a Content-Length of
// its own when the handler has returned before anything was flushed
// (its bufferBeforeChunkingSize).
const autoLength = 2048

// WriteLast is Write for a handler that writes nothing after it and
// returns at once, as the API's hit path does: a body under 2 KiB goes
// without an explicit Content-Length, which net/http then adds itself,
// outside the header map. With one field fewer, the response's header
// map stays within Go's small-map size, which saves the handler and
// net/http's copy of the map the cost of a larger table.
func WriteLast(w http.ResponseWriter, r *http.Request, res Result, cacheControl []string) (status int, n int) {
	return write(w, r, res, cacheControl, false)
}

func write(w http.ResponseWriter, r *http.Request, res Result, cacheControl []string, setLength bool) (status int, n int) {
	e := res.Entry
	h := w.Header()
	etagH, body, lenH := e.etagH, e.Body, e.lenH
	gz := e.Gzip != nil && acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gz {
		etagH, body, lenH = e.gzETagH, e.Gzip, e.gzLenH
	}
	h["Etag"] = etagH
	h["Cache-Control"] = cacheControl
	if cacheControl == nil {
		h["Cache-Control"] = noCacheControl
	}
	h["Vary"] = varyEncoding
	if res.Stale {
		h["Age"] = []string{strconv.FormatInt(int64(max(0, res.Age/time.Second)), 10)}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && (etagMatch(inm, e.ETag) || e.Gzip != nil && etagMatch(inm, e.gzETagH[0])) {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified, 0
	}
	h["Content-Type"] = jsonType
	if setLength || len(body) >= autoLength {
		h["Content-Length"] = lenH
	}
	if gz {
		h["Content-Encoding"] = gzipEncoding
	}
	w.WriteHeader(http.StatusOK)
	n, _ = w.Write(body)
	return http.StatusOK, n
}

// etagMatch reports whether the If-None-Match value lists etag (weak
// comparison, as RFC 9110 asks for If-None-Match) or is "*".
func etagMatch(header, etag string) bool {
	for header != "" {
		var t string
		t, header, _ = strings.Cut(header, ",")
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding value accepts gzip by
// name with a non-zero quality. ("*" is not taken to mean gzip, as in
// gzhttp: clients that send it often expect raw bytes.)
func acceptsGzip(ae string) bool {
	for ae != "" {
		var el string
		el, ae, _ = strings.Cut(ae, ",")
		name, params, _ := strings.Cut(el, ";")
		name = strings.TrimSpace(name)
		if !strings.EqualFold(name, "gzip") && !strings.EqualFold(name, "x-gzip") {
			continue
		}
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return err == nil && q > 0
			}
		}
		return true
	}
	return false
}

// compressible reports whether a response type is worth gzipping: text
// and structured text, not images or archives, which are compressed
// already.
func compressible(ct string) bool {
	ct = strings.ToLower(ct)
	if strings.HasPrefix(ct, "text/event-stream") {
		return false // streamed: buffering up to minSize would hold events back
	}
	if strings.HasPrefix(ct, "text/") {
		return true
	}
	for _, s := range []string{"json", "yaml", "xml", "javascript", "svg", "wasm"} {
		if strings.Contains(ct, s) {
			return true
		}
	}
	return false
}

// Gzip returns middleware that gzips responses of at least minSize bytes
// of a compressible type for clients that accept gzip (gzhttp, at the
// given level; gzip.BestSpeed pays best for dynamic responses). Below
// about one packet (1400 bytes) compression saves no round trip and
// only costs CPU. Responses that already have a Content-Encoding, such
// as the cached gzip variants of Write, pass through untouched, and a
// compressed response's ETag gets the same "-gzip" suffix as GzipETag.
// So that handlers which only know their identity ETag still answer 304
// to a client revalidating a compressed copy, each "-gzip" tag in
// If-None-Match is also passed on without the suffix.
func Gzip(minSize, level int) (func(http.Handler) http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(minSize),
		gzhttp.CompressionLevel(level),
		gzhttp.ContentTypeFilter(compressible),
		gzhttp.EnableZstd(false),
		gzhttp.SuffixETag(gzipSuffix),
	)
	if err != nil {
		return nil, fmt.Errorf("gzip middleware: %w", err)
	}
	return func(h http.Handler) http.Handler {
		gz := wrap(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
				// Nothing to compress: skip gzhttp's per-request writer.
				w.Header()["Vary"] = varyEncoding
				h.ServeHTTP(w, r)
				return
			}
			if inm := r.Header.Get("If-None-Match"); strings.Contains(inm, gzipSuffix+`"`) {
				r.Header.Set("If-None-Match", inm+", "+strings.ReplaceAll(inm, gzipSuffix+`"`, `"`))
			}
			gz(w, r)
		})
	}, nil
}
