package catalog

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/briskhq/brisk/internal/derrors"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  Query
		err   string
	}{
		{"defaults", "", Query{Limit: DefaultLimit}, ""},
		{"all", "q=oak+table&category=coffee&limit=5&cursor=" + EncodeCursor(40), Query{Text: "oak table", Category: "coffee", AfterID: 40, Limit: 5}, ""},
		{"limit zero", "limit=0", Query{}, "limit"},
		{"limit big", "limit=101", Query{}, "limit"},
		{"limit text", "limit=ten", Query{}, "limit"},
		{"bad category", "category=Coffee!", Query{}, "category"},
		{"bad cursor", "cursor=!!!", Query{}, "cursor"},
		{"forged cursor", "cursor=" + "cDE6LTU", Query{}, "cursor"},
		{"unknown param", "sort=price", Query{}, "unknown query parameter"},
		{"repeated", "q=a&q=b", Query{}, "more than once"},
		{"long q", "q=" + strings.Repeat("x", 201), Query{}, "longer"},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		got, err := ParseQuery(v)
		if tt.err != "" {
			if err == nil || !errors.Is(err, derrors.Invalid) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: ParseQuery(%q) err = %v, want Invalid containing %q", tt.name, tt.query, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: ParseQuery(%q) = %+v, %v, want %+v", tt.name, tt.query, got, err, tt.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []int64{1, 42, 1 << 40} {
		got, err := DecodeCursor(EncodeCursor(id))
		if err != nil || got != id {
			t.Errorf("DecodeCursor(EncodeCursor(%d)) = %d, %v", id, got, err)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"q=oak", "category=tea&limit=3", "cursor=" + EncodeCursor(7), "limit=-1", "q=%ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			if !errors.Is(err, derrors.Invalid) {
				t.Fatalf("ParseQuery(%q) = %v, want an Invalid error", raw, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit || q.AfterID < 0 {
			t.Fatalf("ParseQuery(%q) = %+v: out of bounds", raw, q)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(5))
	f.Add("")
	f.Add("cDE6MA")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := DecodeCursor(s)
		if err == nil && s != "" && (id <= 0 || EncodeCursor(id) != s) {
			t.Fatalf("DecodeCursor(%q) = %d: accepted a non-canonical cursor", s, id)
		}
	})
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := Generate(500), Generate(500)
	cats := map[string]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("Generate differs at %d: %+v vs %+v", i, a[i], b[i])
		}
		if a[i].Price.Amount <= 0 || a[i].Available <= 0 || a[i].ID != int64(i+1) {
			t.Fatalf("bad product %+v", a[i])
		}
		cats[a[i].Category] = true
	}
	if len(cats) < 40 {
		t.Errorf("500 products span %d categories, want about 50", len(cats))
	}
}
