package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/derrors"
)

var fastArgon = Argon2Params{Memory: 64, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse", fastArgon)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash = %q, want PHC argon2id format", h)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"right", "correct horse", true},
		{"wrong", "correct horsE", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		got, err := CheckPassword(h, tt.password)
		if err != nil || got != tt.want {
			t.Errorf("%s: CheckPassword = %v, %v, want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := CheckPassword("$bcrypt$x", "a"); err == nil {
		t.Error("CheckPassword(unknown format) succeeded, want error")
	}
	h2, _ := HashPassword("correct horse", fastArgon)
	if h == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func newTokens(t *testing.T, now time.Time) *Tokens {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	return &Tokens{Keys: keys, Issuer: "brisk", Audience: "brisk-api", TTL: time.Hour, Now: func() time.Time { return now }}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tk := newTokens(t, now)
	tok, exp, err := tk.Issue(User{ID: 42, Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("expiry = %v, want %v", exp, now.Add(time.Hour))
	}
	c, err := tk.Verify(tok)
	if err != nil || c.UserID != 42 || c.Role != RoleAdmin {
		t.Fatalf("Verify = %+v, %v, want user 42 admin", c, err)
	}

	other := newTokens(t, now)
	otherTok, _, _ := other.Issue(User{ID: 42, Role: RoleAdmin})
	parts := strings.Split(tok, ".")
	header := func(alg string) string {
		return b64(map[string]string{"alg": alg, "kid": tk.Keys.SigningKeyID(), "typ": "JWT"})
	}
	claims := b64(map[string]any{"iss": "brisk", "aud": "brisk-api", "sub": "42", "role": "admin", "exp": now.Add(time.Hour).Unix()})
	pub, _ := tk.Keys.JWKS()
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(header("HS256") + "." + claims))
	hsTok := header("HS256") + "." + claims + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	issue := func(mod func(*Tokens)) string {
		t2 := *tk
		mod(&t2)
		s, _, err := t2.Issue(User{ID: 42, Role: RoleShopper})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name  string
		token string
	}{
		{"alg none", header("none") + "." + claims + "."},
		{"hmac with the public key", hsTok},
		{"signed by an unknown key", otherTok},
		{"tampered claims", parts[0] + "." + b64(map[string]any{"iss": "brisk", "aud": "brisk-api", "sub": "1", "role": "admin", "exp": now.Add(time.Hour).Unix()}) + "." + parts[2]},
		{"expired", issue(func(t2 *Tokens) { t2.Now = func() time.Time { return now.Add(-2 * time.Hour) } })},
		{"not yet valid", issue(func(t2 *Tokens) { t2.Now = func() time.Time { return now.Add(10 * time.Minute) } })},
		{"wrong issuer", issue(func(t2 *Tokens) { t2.Issuer = "evil" })},
		{"wrong audience", issue(func(t2 *Tokens) { t2.Audience = "other-api" })},
		{"garbage", "not.a.token"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tk.Verify(tt.token); !errors.Is(err, derrors.Unauthenticated) {
				t.Errorf("Verify(%s) = %v, want Unauthenticated", tt.name, err)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	now := time.Now()
	oldKey, _ := GenerateKey()
	newKey, _ := GenerateKey()
	before, _ := NewKeys(oldKey)
	tkOld := &Tokens{Keys: before, Issuer: "i", Audience: "a", TTL: time.Hour, Now: func() time.Time { return now }}
	oldTok, _, _ := tkOld.Issue(User{ID: 1, Role: RoleShopper})

	// Rotation: the new key signs, the old one still verifies (overlap window).
	during, err := NewKeys(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	tk := &Tokens{Keys: during, Issuer: "i", Audience: "a", TTL: time.Hour, Now: func() time.Time { return now }}
	if _, err := tk.Verify(oldTok); err != nil {
		t.Errorf("old token during overlap: %v, want valid", err)
	}
	newTok, _, _ := tk.Issue(User{ID: 1, Role: RoleShopper})
	if !strings.Contains(string(mustJWKS(t, during)), during.SigningKeyID()) || during.SigningKeyID() == before.SigningKeyID() {
		t.Error("JWKS does not publish the new signing key")
	}
	// After the overlap the old key is gone.
	after, _ := NewKeys(newKey)
	tk.Keys = after
	if _, err := tk.Verify(oldTok); err == nil {
		t.Error("old token after rotation verified, want rejected")
	}
	if _, err := tk.Verify(newTok); err != nil {
		t.Errorf("new token after rotation: %v", err)
	}
}

func mustJWKS(t *testing.T, k *Keys) []byte {
	b, err := k.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"d"`) {
		t.Fatal("JWKS leaks the private key")
	}
	return b
}

type memUsers struct{ byEmail map[string]User }

func (m *memUsers) CreateUser(_ context.Context, u User) (User, error) {
	if _, ok := m.byEmail[u.Email]; ok {
		return User{}, derrors.New(derrors.Conflict, "exists")
	}
	u.ID = int64(len(m.byEmail) + 1)
	m.byEmail[u.Email] = u
	return u, nil
}
func (m *memUsers) UserByEmail(_ context.Context, e string) (User, error) {
	if u, ok := m.byEmail[e]; ok {
		return u, nil
	}
	return User{}, derrors.New(derrors.NotFound, "no user")
}
func (m *memUsers) UserByID(context.Context, int64) (User, error)          { return User{}, derrors.NotFound }
func (m *memUsers) SetPassword(context.Context, int64, string, Role) error { return nil }

func TestRegisterLogin(t *testing.T) {
	s := &Service{Store: &memUsers{byEmail: map[string]User{}}, Tokens: newTokens(t, time.Now()), Argon2: fastArgon}
	ctx := context.Background()
	if _, err := s.Register(ctx, "Ann@Example.com", "s3cret-pass", "Ann"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, email, password string
		want                  error
	}{
		{"ok, email case-insensitive", "ann@example.COM", "s3cret-pass", nil},
		{"wrong password", "ann@example.com", "s3cret-pasS", derrors.Unauthenticated},
		{"unknown email", "bob@example.com", "s3cret-pass", derrors.Unauthenticated},
		{"malformed email", "bob", "s3cret-pass", derrors.Unauthenticated},
	}
	for _, tt := range tests {
		sess, err := s.Login(ctx, tt.email, tt.password)
		if tt.want == nil && (err != nil || sess.Token == "" || sess.User.Role != RoleShopper) {
			t.Errorf("%s: Login = %+v, %v, want a session", tt.name, sess, err)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Login err = %v, want %v", tt.name, err, tt.want)
		}
	}
	regTests := []struct {
		name, email, password string
		want                  error
	}{
		{"duplicate", "ANN@example.com", "another-pass", derrors.Conflict},
		{"short password", "c@example.com", "short", derrors.Invalid},
		{"bad email", "not-an-email", "long-enough", derrors.Invalid},
		{"display name in email", "Ann <a@example.com>", "long-enough", derrors.Invalid},
	}
	for _, tt := range regTests {
		if _, err := s.Register(ctx, tt.email, tt.password, ""); !errors.Is(err, tt.want) {
			t.Errorf("%s: Register err = %v, want %v", tt.name, err, tt.want)
		}
	}
}
