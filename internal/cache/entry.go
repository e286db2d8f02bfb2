package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Entry is one cached response: the encoded body, its strong ETag and,
// when it pays, a gzip variant with its own ETag. Everything is computed
// once per fill; an Entry is shared by every request that hits it and
// must not be modified.
type Entry struct {
	Body   []byte
	ETag   string    // strong: a hash of Body
	Gzip   []byte    // Body gzipped, or nil when it does not pay
	Stored time.Time // when Body was computed from the store

	stored  int64 // Stored in unix ns
	expires int64 // unix ns: fresh until then
	delta   int64 // ns the load took (XFetch's delta)

	// Header values, built once: a hit assigns them without allocating.
	// Each has cap == len, so an append elsewhere copies instead of
	// writing into the shared array.
	etagH, gzETagH, lenH, gzLenH []string

	refreshing atomic.Bool  // an early refresh is running
	retryAt    atomic.Int64 // unix ns: after a failed load, no new load until then
}

// NewEntry returns an uncached entry for body (ETag, no gzip variant), for
// responses written the same way without a cache.
func NewEntry(body []byte) *Entry {
	return newEntry(body, time.Now(), 0, 0, -1)
}

func newEntry(body []byte, stored time.Time, ttl, took time.Duration, gzipMin int) *Entry {
	e := &Entry{Body: body, Stored: stored, stored: stored.UnixNano(), delta: int64(took)}
	e.expires = e.stored + int64(ttl)
	if gzipMin >= 0 && len(body) >= gzipMin {
		e.Gzip = gzipIfSmaller(body)
	}
	e.finish()
	return e
}

// finish computes the ETags and header values.
func (e *Entry) finish() {
	e.ETag = ETag(e.Body)
	e.etagH = []string{e.ETag}
	e.lenH = []string{strconv.Itoa(len(e.Body))}
	if e.Gzip != nil {
		e.gzETagH = []string{GzipETag(e.ETag)}
		e.gzLenH = []string{strconv.Itoa(len(e.Gzip))}
	}
}

// size is the entry's weight in L1: its bytes plus a fixed overhead.
func (e *Entry) size() int { return len(e.Body) + len(e.Gzip) + 256 }

// ETag returns the strong entity tag of body: a 64-bit FNV-1a hash in
// base 36, quoted.
func ETag(body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body)
	return `"` + strconv.FormatUint(h.Sum64(), 36) + `"`
}

// GzipETag returns the entity tag of the gzip representation of the
// response whose identity ETag is etag: a strong validator must differ
// between representations. It uses the suffix that the Gzip middleware
// adds to responses it compresses itself.
func GzipETag(etag string) string {
	if n := len(etag); n >= 2 && etag[n-1] == '"' {
		return etag[:n-1] + gzipSuffix + `"`
	}
	return etag + gzipSuffix
}

const gzipSuffix = "-gzip"

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return w
}}

// gzipIfSmaller returns body gzipped when that saves at least 10%, else nil.
func gzipIfSmaller(body []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(body) / 3)
	w := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(body); err != nil {
		return nil
	}
	if err := w.Close(); err != nil {
		return nil
	}
	if buf.Len() > len(body)*9/10 {
		return nil
	}
	return bytes.Clone(buf.Bytes())
}

// The L2 value format: a header, the body, then the gzip variant.
//
//	magic 'B' | format 1 | stored int64 | expires int64 | delta int64 | len(body) uint32 | body | gzip
const (
	l2Magic  = 'B'
	l2Format = 1
	l2Header = 2 + 3*8 + 4
)

func (e *Entry) marshal() []byte {
	b := make([]byte, l2Header, l2Header+len(e.Body)+len(e.Gzip))
	b[0], b[1] = l2Magic, l2Format
	binary.BigEndian.PutUint64(b[2:], uint64(e.stored))
	binary.BigEndian.PutUint64(b[10:], uint64(e.expires))
	binary.BigEndian.PutUint64(b[18:], uint64(e.delta))
	binary.BigEndian.PutUint32(b[26:], uint32(len(e.Body)))
	b = append(b, e.Body...)
	return append(b, e.Gzip...)
}

func unmarshalEntry(b []byte) (*Entry, error) {
	if len(b) < l2Header || b[0] != l2Magic || b[1] != l2Format {
		return nil, errors.New("not a cache entry")
	}
	n := int(binary.BigEndian.Uint32(b[26:]))
	if n > len(b)-l2Header {
		return nil, errors.New("truncated cache entry")
	}
	e := &Entry{
		stored:  int64(binary.BigEndian.Uint64(b[2:])),
		expires: int64(binary.BigEndian.Uint64(b[10:])),
		delta:   int64(binary.BigEndian.Uint64(b[18:])),
		Body:    b[l2Header : l2Header+n : l2Header+n],
	}
	if g := b[l2Header+n:]; len(g) > 0 {
		e.Gzip = g
	}
	e.Stored = time.Unix(0, e.stored)
	e.finish()
	return e, nil
}
