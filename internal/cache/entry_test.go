package cache

import (
	"bytes"
	"testing"
	"time"
)

// FuzzUnmarshalEntry: any bytes from L2 decode or fail cleanly, and an
// entry survives the round trip.
func FuzzUnmarshalEntry(f *testing.F) {
	for _, body := range []string{"", "{}", `{"id":1,"name":"oak"}`} {
		e := newEntry([]byte(body), time.Unix(1700000000, 0), time.Minute, time.Millisecond, -1)
		f.Add(e.marshal())
	}
	big := newEntry(bytes.Repeat([]byte(`{"name":"oak chair"},`), 200), time.Unix(1700000000, 0), time.Minute, time.Millisecond, 100)
	f.Add(big.marshal())
	f.Add([]byte("B\x01short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := unmarshalEntry(b)
		if err != nil {
			return
		}
		again, err := unmarshalEntry(e.marshal())
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !bytes.Equal(again.Body, e.Body) || !bytes.Equal(again.Gzip, e.Gzip) || again.ETag != e.ETag ||
			again.stored != e.stored || again.expires != e.expires || again.delta != e.delta {
			t.Fatalf("round trip changed the entry")
		}
		if e.ETag != ETag(e.Body) {
			t.Fatalf("ETag %s does not match the body", e.ETag)
		}
	})
}

func TestEntryRoundTrip(t *testing.T) {
	stored := time.Unix(1700000000, 123)
	for _, tc := range []struct {
		name     string
		body     []byte
		gzipMin  int
		wantGzip bool
	}{
		{"small", []byte(`{"id":1}`), 1400, false},
		{"big", bytes.Repeat([]byte(`{"name":"oak chair"},`), 200), 1400, true},
		{"incompressible", randomBytes(4000), 1400, false},
		{"gzip off", bytes.Repeat([]byte("a"), 4000), -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEntry(tc.body, stored, time.Minute, 3*time.Millisecond, tc.gzipMin)
			if (e.Gzip != nil) != tc.wantGzip {
				t.Fatalf("gzip variant: %v, want %v", e.Gzip != nil, tc.wantGzip)
			}
			got, err := unmarshalEntry(e.marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Body, tc.body) || !bytes.Equal(got.Gzip, e.Gzip) || got.ETag != e.ETag ||
				!got.Stored.Equal(stored) || got.expires != stored.Add(time.Minute).UnixNano() || got.delta != int64(3*time.Millisecond) {
				t.Errorf("unmarshal(marshal(e)) = %+v, want %+v", got, e)
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
