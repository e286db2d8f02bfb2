package auth

import (
	"sync"
	"time"
)

// MaxVerifiedTokens bounds the cache of verified tokens (see Tokens.Verify).
const MaxVerifiedTokens = 8192

// validity is the time window in which a token's exp, nbf and iat claims
// pass validation: from <= now < until.
type validity struct {
	from, until time.Time
}

// contains reports whether the validator would accept the time claims at
// now. It is never more lenient than jwx's validation: the lower bound is
// checked at now truncated to the second (jwx truncates now by at most
// that), the upper bound at now itself.
func (w validity) contains(now time.Time) bool {
	return !now.Truncate(time.Second).Before(w.from) && now.Before(w.until)
}

// verifiedToken is a cache entry: the claims of a token whose signature,
// issuer and audience were verified under the configuration recorded with
// it.
type verifiedToken struct {
	keys             *Keys
	issuer, audience string
	skew             time.Duration
	claims           Claims
	window           validity
}

// tokenCache remembers tokens that verified, keyed by the whole token
// string, so that a client that sends the same token on every request
// pays for one EdDSA verification, not one per request. Only successful
// verifications are stored, and a hit is taken only when the Tokens
// asking has the same key set, issuer, audience and skew as the one that
// verified the token, and only while the token's time claims still pass
// at that Tokens' clock. Its size is bounded; it is safe for concurrent use.
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[string]verifiedToken
}

// verifiedTokens is shared by every Tokens: entries record the
// configuration they were verified under, so that copies of a Tokens, or
// several Tokens, cannot take each other's entries by mistake.
var verifiedTokens = newTokenCache(MaxVerifiedTokens)

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[string]verifiedToken)}
}

func (c *tokenCache) get(t *Tokens, token string) (Claims, bool) {
	c.mu.Lock()
	e, ok := c.m[token]
	c.mu.Unlock()
	if !ok || e.keys != t.Keys || e.issuer != t.Issuer || e.audience != t.Audience || e.skew != t.Skew {
		return Claims{}, false
	}
	if !e.window.contains(t.now()) {
		return Claims{}, false
	}
	return e.claims, true
}

func (c *tokenCache) put(t *Tokens, token string, claims Claims, w validity) {
	if c.max <= 0 {
		return
	}
	now := t.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[token]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[token] = verifiedToken{
		keys: t.Keys, issuer: t.Issuer, audience: t.Audience, skew: t.Skew,
		claims: claims, window: w,
	}
}

// evict makes room: it drops expired entries, then, if the cache is still
// more than three quarters full, arbitrary ones (map order) down to that.
// Called with c.mu held.
func (c *tokenCache) evict(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.window.until) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) <= c.max*3/4 {
			break
		}
		delete(c.m, k)
	}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
