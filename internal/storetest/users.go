package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/derrors"
)

var userTests = []test{
	{"users/CreateUser", testCreateUser},
	{"users/lookup", testUserLookup},
	{"users/SetPassword", testSetPassword},
}

func newUser(t *testing.T, s Stores, email string) auth.User {
	t.Helper()
	u, err := s.Users.CreateUser(t.Context(), auth.User{Email: email, Name: "Test " + email, Role: auth.RoleShopper, PasswordHash: "hash-" + email})
	if err != nil {
		t.Fatalf("CreateUser(%q) = %v", email, err)
	}
	return u
}

func sameUser(got, want auth.User) string {
	if !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func testCreateUser(t *testing.T, s Stores) {
	ctx := t.Context()
	in := auth.User{Email: "Alice@Example.COM", Name: "Alice", Role: auth.RoleAdmin, PasswordHash: "$argon2id$x"}
	u, err := s.Users.CreateUser(ctx, in)
	if err != nil {
		t.Fatalf("CreateUser(%q) = %v", in.Email, err)
	}
	if u.ID <= 0 || u.Email != "alice@example.com" || u.Name != in.Name || u.Role != in.Role || u.PasswordHash != in.PasswordHash {
		t.Errorf("CreateUser(%+v) = %+v, want an id, the email lower-case, the rest as given", in, u)
	}
	if d := time.Since(u.CreatedAt); d < -time.Minute || d > time.Minute {
		t.Errorf("CreateUser().CreatedAt = %v, want about now", u.CreatedAt)
	}

	for _, email := range []string{"alice@example.com", "ALICE@EXAMPLE.COM", "Alice@example.com"} {
		_, err := s.Users.CreateUser(ctx, auth.User{Email: email, Name: "Other", Role: auth.RoleShopper, PasswordHash: "h"})
		wantKind(t, fmt.Sprintf("CreateUser(duplicate %q)", email), err, derrors.Conflict)
	}

	b := newUser(t, s, "bob@example.com")
	if b.ID == u.ID || b.ID <= 0 {
		t.Errorf("second user id = %d, first %d; want distinct positive ids", b.ID, u.ID)
	}
}

func testUserLookup(t *testing.T, s Stores) {
	ctx := t.Context()
	a := newUser(t, s, "carol@example.com")
	b := newUser(t, s, "dave@example.com")
	for _, want := range []auth.User{a, b} {
		got, err := s.Users.UserByID(ctx, want.ID)
		if err != nil {
			t.Errorf("UserByID(%d) = %v", want.ID, err)
		} else if d := sameUser(got, want); d != "" {
			t.Errorf("UserByID(%d): %s", want.ID, d)
		}
	}
	tests := []struct {
		email string
		want  auth.User
	}{
		{"carol@example.com", a},
		{"Carol@Example.com", a},
		{"DAVE@EXAMPLE.COM", b},
	}
	for _, tc := range tests {
		got, err := s.Users.UserByEmail(ctx, tc.email)
		if err != nil {
			t.Errorf("UserByEmail(%q) = %v", tc.email, err)
		} else if d := sameUser(got, tc.want); d != "" {
			t.Errorf("UserByEmail(%q): %s", tc.email, d)
		}
	}
	_, err := s.Users.UserByEmail(ctx, "nobody@example.com")
	wantKind(t, "UserByEmail(unknown)", err, derrors.NotFound)
	_, err = s.Users.UserByID(ctx, b.ID+1000)
	wantKind(t, "UserByID(unknown)", err, derrors.NotFound)
}

func testSetPassword(t *testing.T, s Stores) {
	ctx := t.Context()
	a := newUser(t, s, "erin@example.com")
	b := newUser(t, s, "frank@example.com")
	if err := s.Users.SetPassword(ctx, a.ID, "new-hash", auth.RoleAdmin); err != nil {
		t.Fatalf("SetPassword(%d) = %v", a.ID, err)
	}
	want := a
	want.PasswordHash, want.Role = "new-hash", auth.RoleAdmin
	if got, err := s.Users.UserByEmail(ctx, a.Email); err != nil || sameUser(got, want) != "" {
		t.Errorf("UserByEmail after SetPassword = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.Users.UserByID(ctx, b.ID); err != nil || sameUser(got, b) != "" {
		t.Errorf("other user after SetPassword = %+v, %v; want %+v", got, err, b)
	}
	err := s.Users.SetPassword(ctx, b.ID+1000, "x", auth.RoleShopper)
	wantKind(t, "SetPassword(unknown)", err, derrors.NotFound)
}
