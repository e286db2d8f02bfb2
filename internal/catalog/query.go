package catalog

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/briskhq/brisk/internal/derrors"
)

// Limits of a listing query.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	MaxTextLen   = 200
)

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// EncodeCursor returns the opaque cursor that continues after product id.
func EncodeCursor(afterID int64) string {
	if afterID <= 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("p1:" + strconv.FormatInt(afterID, 10)))
}

// DecodeCursor parses a cursor made by EncodeCursor.
func DecodeCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, derrors.New(derrors.Invalid, "cursor is malformed")
	}
	rest, ok := strings.CutPrefix(string(b), "p1:")
	if !ok {
		return 0, derrors.New(derrors.Invalid, "cursor is malformed")
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != rest {
		return 0, derrors.New(derrors.Invalid, "cursor is malformed")
	}
	return id, nil
}

// ParseQuery validates the query parameters of GET /v1/products:
// q, category, cursor and limit. Unknown parameters are an error.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Limit: DefaultLimit}
	for k, vs := range v {
		switch k {
		case "q", "category", "cursor", "limit":
			if len(vs) > 1 {
				return Query{}, derrors.New(derrors.Invalid, "parameter %q given more than once", k)
			}
		default:
			return Query{}, derrors.New(derrors.Invalid, "unknown query parameter %q", k)
		}
	}
	q.Text = strings.TrimSpace(v.Get("q"))
	if !utf8.ValidString(q.Text) {
		return Query{}, derrors.New(derrors.Invalid, "q is not valid UTF-8")
	}
	if utf8.RuneCountInString(q.Text) > MaxTextLen {
		return Query{}, derrors.New(derrors.Invalid, "q is longer than %d characters", MaxTextLen)
	}
	if c := v.Get("category"); c != "" {
		if !slugRE.MatchString(c) {
			return Query{}, derrors.New(derrors.Invalid, "category must be a slug (lower-case letters, digits and dashes)")
		}
		q.Category = c
	}
	after, err := DecodeCursor(v.Get("cursor"))
	if err != nil {
		return Query{}, err
	}
	q.AfterID = after
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return Query{}, derrors.New(derrors.Invalid, "limit must be an integer from 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// SearchTerms splits free text into lower-case word terms (letters and
// digits only), at most 8, so that every store can build a safe full-text
// query from them without passing user syntax through.
func SearchTerms(text string) []string {
	var terms []string
	for _, f := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) {
		terms = append(terms, f)
		if len(terms) == 8 {
			break
		}
	}
	return terms
}
