package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/derrors"
)

// cached reports whether token has an entry in the shared cache.
func cached(token string) bool {
	verifiedTokens.mu.Lock()
	defer verifiedTokens.mu.Unlock()
	_, ok := verifiedTokens.m[token]
	return ok
}

func TestVerifyCacheHonoursExpiry(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := now
	tk := newTokens(t, now)
	tk.Skew = 30 * time.Second
	tk.Now = func() time.Time { return clock }
	tok, _, err := tk.Issue(User{ID: 7, Role: RoleShopper})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if !cached(tok) {
		t.Fatal("verified token not cached")
	}
	// Still valid inside the skew after exp: the cache answers.
	clock = now.Add(time.Hour + 29*time.Second)
	if c, err := tk.Verify(tok); err != nil || c.UserID != 7 {
		t.Fatalf("Verify within skew = %+v, %v", c, err)
	}
	// Past exp + skew: rejected although cached.
	clock = now.Add(time.Hour + 30*time.Second)
	if _, err := tk.Verify(tok); !errors.Is(err, derrors.Unauthenticated) {
		t.Fatalf("Verify after expiry = %v, want Unauthenticated", err)
	}
	// A clock moved back before iat - skew: rejected too.
	clock = now.Add(-31 * time.Second)
	if _, err := tk.Verify(tok); !errors.Is(err, derrors.Unauthenticated) {
		t.Fatalf("Verify before iat = %v, want Unauthenticated", err)
	}
}

func TestVerifyCacheKeepsTokensApart(t *testing.T) {
	now := time.Now()
	tk := newTokens(t, now)
	a, _, _ := tk.Issue(User{ID: 1, Role: RoleShopper})
	b, _, _ := tk.Issue(User{ID: 2, Role: RoleAdmin})
	for range 2 { // the second round answers from the cache
		ca, err := tk.Verify(a)
		if err != nil || ca.UserID != 1 || ca.Role != RoleShopper {
			t.Fatalf("Verify(a) = %+v, %v", ca, err)
		}
		cb, err := tk.Verify(b)
		if err != nil || cb.UserID != 2 || cb.Role != RoleAdmin {
			t.Fatalf("Verify(b) = %+v, %v", cb, err)
		}
	}
	// A cached token is not valid for a Tokens with other keys, issuer or audience.
	other := newTokens(t, now)
	if _, err := other.Verify(a); !errors.Is(err, derrors.Unauthenticated) {
		t.Errorf("cached token under other keys = %v, want Unauthenticated", err)
	}
	wrongAud := *tk
	wrongAud.Audience = "other-api"
	if _, err := wrongAud.Verify(a); !errors.Is(err, derrors.Unauthenticated) {
		t.Errorf("cached token under another audience = %v, want Unauthenticated", err)
	}
	wrongIss := *tk
	wrongIss.Issuer = "evil"
	if _, err := wrongIss.Verify(a); !errors.Is(err, derrors.Unauthenticated) {
		t.Errorf("cached token under another issuer = %v, want Unauthenticated", err)
	}
	// One changed character is another token: verified on its own, rejected.
	sub := byte('A')
	if a[len(a)-2] == sub {
		sub = 'B'
	}
	tampered := a[:len(a)-2] + string(sub) + a[len(a)-1:]
	if _, err := tk.Verify(tampered); !errors.Is(err, derrors.Unauthenticated) {
		t.Errorf("tampered token = %v, want Unauthenticated", err)
	}
	if cached(tampered) {
		t.Error("a rejected token was cached")
	}
}

func TestTokenCacheBounded(t *testing.T) {
	now := time.Now()
	tk := newTokens(t, now)
	c := newTokenCache(100)
	w := validity{from: now.Add(-time.Minute), until: now.Add(time.Hour)}
	for i := range 1000 {
		c.put(tk, fmt.Sprintf("tok-%d", i), Claims{UserID: int64(i + 1)}, w)
		if n := c.len(); n > 100 {
			t.Fatalf("after %d puts the cache holds %d entries, want <= 100", i+1, n)
		}
	}
	// The newest entry is always kept, with its own claims.
	if got, ok := c.get(tk, "tok-999"); !ok || got.UserID != 1000 {
		t.Errorf("get(tok-999) = %+v, %v", got, ok)
	}
	// Expired entries go first.
	c = newTokenCache(4)
	old := validity{from: now.Add(-2 * time.Hour), until: now.Add(-time.Hour)}
	for i := range 3 {
		c.put(tk, fmt.Sprintf("old-%d", i), Claims{UserID: 1}, old)
	}
	c.put(tk, "live", Claims{UserID: 2}, w)
	c.put(tk, "new", Claims{UserID: 3}, w)
	if _, ok := c.get(tk, "live"); !ok {
		t.Error("live entry evicted while expired ones were there")
	}
	if n := c.len(); n != 2 {
		t.Errorf("cache holds %d entries after evicting expired ones, want 2", n)
	}
}
