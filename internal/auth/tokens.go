package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/briskhq/brisk/internal/derrors"
)

// Keys is the signing key set: the first key signs, every key verifies, so
// a rotated-out key keeps verifying the tokens it signed while they live.
type Keys struct {
	private jwk.Set
	public  jwk.Set
	signer  jwk.Key
}

// GenerateKey returns a new Ed25519 private JWK with a key id.
func GenerateKey() (jwk.Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	k, err := jwk.Import(priv)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := jwk.AssignKeyID(k); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := k.Set(jwk.AlgorithmKey, jwa.EdDSA()); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := k.Set(jwk.KeyUsageKey, "sig"); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// NewKeys builds a key set from private Ed25519 JWKs; the first signs.
func NewKeys(keys ...jwk.Key) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("new keys: no key")
	}
	priv := jwk.NewSet()
	for _, k := range keys {
		if k.KeyType().String() != "OKP" {
			return nil, fmt.Errorf("new keys: key %q is %s, want an Ed25519 (OKP) key", keyID(k), k.KeyType())
		}
		if _, ok := k.KeyID(); !ok {
			if err := jwk.AssignKeyID(k); err != nil {
				return nil, fmt.Errorf("new keys: %w", err)
			}
		}
		if err := k.Set(jwk.AlgorithmKey, jwa.EdDSA()); err != nil {
			return nil, fmt.Errorf("new keys: %w", err)
		}
		if err := priv.AddKey(k); err != nil {
			return nil, fmt.Errorf("new keys: %w", err)
		}
	}
	pub, err := jwk.PublicSetOf(priv)
	if err != nil {
		return nil, fmt.Errorf("new keys: %w", err)
	}
	return &Keys{private: priv, public: pub, signer: keys[0]}, nil
}

// LoadKeys reads a JWK set of private Ed25519 keys from a file.
func LoadKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("load keys %s: %w", path, err)
	}
	var keys []jwk.Key
	for i := range set.Len() {
		k, _ := set.Key(i)
		keys = append(keys, k)
	}
	return NewKeys(keys...)
}

// Save writes the private key set to path with mode 0600.
func (k *Keys) Save(path string) error {
	b, err := json.MarshalIndent(k.private, "", "  ")
	if err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	return nil
}

// JWKS returns the public key set as served at /.well-known/jwks.json.
func (k *Keys) JWKS() ([]byte, error) { return json.Marshal(k.public) }

// SigningKeyID returns the key id that signs new tokens.
func (k *Keys) SigningKeyID() string { return keyID(k.signer) }

func keyID(k jwk.Key) string {
	id, _ := k.KeyID()
	return id
}

// Claims is what a verified access token says about its bearer.
type Claims struct {
	UserID int64
	Role   Role
	Expiry time.Time
}

// Tokens issues and verifies EdDSA-signed JWT access tokens locally (no
// call to an identity service on the request path).
type Tokens struct {
	Keys     *Keys
	Issuer   string
	Audience string
	TTL      time.Duration
	Skew     time.Duration    // clock skew accepted on exp/nbf
	Now      func() time.Time // nil: time.Now
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Issue returns a signed token for the user and its expiry.
func (t *Tokens) Issue(u User) (string, time.Time, error) {
	now := t.now().Truncate(time.Second)
	exp := now.Add(t.TTL)
	tok, err := jwt.NewBuilder().
		Issuer(t.Issuer).
		Audience([]string{t.Audience}).
		Subject(strconv.FormatInt(u.ID, 10)).
		IssuedAt(now).
		NotBefore(now).
		Expiration(exp).
		Claim("role", string(u.Role)).
		Build()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA(), t.Keys.signer))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	return string(signed), exp, nil
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// Verify checks a token's signature (known key id, EdDSA only), issuer,
// audience, expiry and not-before, and returns its claims. Every failure is
// derrors.Unauthenticated.
//
// A token that verified is remembered (see verifiedTokens), so that the
// next request with the same token skips the signature check; its time
// claims are checked again on every use.
func (t *Tokens) Verify(token string) (Claims, error) {
	if c, ok := verifiedTokens.get(t, token); ok {
		return c, nil
	}
	c, window, err := t.verify(token)
	if err != nil {
		return Claims{}, err
	}
	verifiedTokens.put(t, token, c, window)
	return c, nil
}

// verify is Verify without the cache; it also returns the window in which
// the token's time claims pass.
func (t *Tokens) verify(token string) (Claims, validity, error) {
	tok, err := jwt.ParseString(token,
		jwt.WithKeySet(t.Keys.public),
		jwt.WithValidate(true),
		jwt.WithIssuer(t.Issuer),
		jwt.WithAudience(t.Audience),
		jwt.WithAcceptableSkew(t.Skew),
		jwt.WithClock(clockFunc(t.now)),
		jwt.WithRequiredClaim("exp"),
	)
	if err != nil {
		return Claims{}, validity{}, derrors.Wrap(derrors.Unauthenticated, err, "invalid or expired token")
	}
	sub, _ := tok.Subject()
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 {
		return Claims{}, validity{}, derrors.New(derrors.Unauthenticated, "invalid token subject")
	}
	var role string
	if err := tok.Get("role", &role); err != nil || (Role(role) != RoleShopper && Role(role) != RoleAdmin) {
		return Claims{}, validity{}, derrors.New(derrors.Unauthenticated, "invalid token role")
	}
	exp, _ := tok.Expiration()
	// The window in which the validator above accepts the token's time
	// claims: exp is required; iat and nbf bound it from below when present.
	w := validity{until: exp.Add(t.Skew)}
	if iat, ok := tok.IssuedAt(); ok {
		w.from = iat.Add(-t.Skew)
	}
	if nbf, ok := tok.NotBefore(); ok && nbf.Add(-t.Skew).After(w.from) {
		w.from = nbf.Add(-t.Skew)
	}
	return Claims{UserID: id, Role: Role(role), Expiry: exp}, w, nil
}
