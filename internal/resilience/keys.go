package resilience

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
)

// ParsePrefixes reads a comma-separated list of CIDR prefixes or single
// addresses ("127.0.0.0/8, ::1, 10.0.0.0/8"); "" and "none" are empty.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	if strings.TrimSpace(s) == "none" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("network %q: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func contains(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns a function that finds a request's client address: the
// connection's peer, unless that peer is a trusted proxy, in which case
// the right-most X-Forwarded-For entry that is not a trusted proxy (the
// left-most entry when all are trusted). Entries left of it could be
// forged by the client, so they are never used.
func ClientIP(trusted []netip.Prefix) func(r *http.Request) netip.Addr {
	return func(r *http.Request) netip.Addr {
		peer := remoteAddr(r)
		if !peer.IsValid() || !contains(trusted, peer) {
			return peer
		}
		hops := r.Header.Values("X-Forwarded-For")
		var addrs []netip.Addr
		for _, h := range hops {
			for _, f := range strings.Split(h, ",") {
				if a, err := netip.ParseAddr(strings.TrimSpace(f)); err == nil {
					addrs = append(addrs, a.Unmap())
				}
			}
		}
		for i := len(addrs) - 1; i >= 0; i-- {
			if !contains(trusted, addrs[i]) {
				return addrs[i]
			}
		}
		if len(addrs) > 0 {
			return addrs[0]
		}
		return peer
	}
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// ExemptNetworks returns an exemption (RateLimitConfig.Exempt) for
// requests whose client address is in nets.
func ExemptNetworks(clientIP func(*http.Request) netip.Addr, nets []netip.Prefix) func(*http.Request) bool {
	if len(nets) == 0 {
		return nil
	}
	return func(r *http.Request) bool {
		a := clientIP(r)
		return a.IsValid() && contains(nets, a)
	}
}

// ByIP keys a request by its client address; IPv6 clients by their /64,
// since one host commonly holds a whole /64.
func ByIP(clientIP func(*http.Request) netip.Addr) KeyFunc {
	return func(r *http.Request) (string, bool) {
		a := clientIP(r)
		if !a.IsValid() {
			return "unknown", true
		}
		if a.Is6() {
			p, _ := a.Prefix(64)
			return p.String(), true
		}
		return a.String(), true
	}
}

// When restricts key to requests that match.
func When(match func(*http.Request) bool, key KeyFunc) KeyFunc {
	return func(r *http.Request) (string, bool) {
		if !match(r) {
			return "", false
		}
		return key(r)
	}
}

// Route matches requests of one method and exact path.
func Route(method, path string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == method && r.URL.Path == path }
}

// PathPrefix matches requests whose path starts with prefix.
func PathPrefix(prefix string) func(*http.Request) bool {
	return func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, prefix) }
}

// maxPeek bounds how much of a body JSONField reads.
const maxPeek = 8 << 10

// JSONField keys a request by a string field of its JSON body, trimmed
// and lower-cased (the account of a login: "email"). It reads at most
// 8 KiB and puts them back, so the handler still reads the whole body.
// A body without the field does not apply (the handler rejects it); all
// bodies longer than 8 KiB share one bucket, so padding cannot dodge the
// limit.
func JSONField(field string) KeyFunc {
	return func(r *http.Request) (string, bool) {
		if r.Body == nil || r.Body == http.NoBody {
			return "", false
		}
		head, err := io.ReadAll(io.LimitReader(r.Body, maxPeek))
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
		if err != nil {
			return "", false
		}
		if len(head) == maxPeek {
			return "(long body)", true
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(head, &m) != nil {
			return "", false
		}
		var v string
		if json.Unmarshal(m[field], &v) != nil {
			return "", false
		}
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" {
			return "", false
		}
		return v, true
	}
}

// BearerUser keys a request by the user its bearer token names, as
// verify finds it (user id and the token's expiry); requests without a
// valid token do not apply. Verified tokens are remembered for up to a
// minute (never past their expiry), so that a user's requests pay for
// one signature check here, not one each. The key only picks a bucket:
// the handler still verifies the token for access.
func BearerUser(verify func(token string) (user string, expiry time.Time, err error)) KeyFunc {
	seen := otter.Must(&otter.Options[string, bearer]{
		MaximumSize:      100_000,
		ExpiryCalculator: otter.ExpiryWriting[string, bearer](time.Minute),
	})
	return func(r *http.Request) (string, bool) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			return "", false
		}
		now := time.Now()
		if b, ok := seen.GetIfPresent(tok); ok && now.Before(b.expiry) {
			return b.user, true
		}
		user, exp, err := verify(tok)
		if err != nil {
			return "", false
		}
		seen.Set(tok, bearer{user: user, expiry: exp})
		return user, true
	}
}

type bearer struct {
	user   string
	expiry time.Time
}
