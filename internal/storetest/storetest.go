// Package storetest is the contract test suite of the stores: every
// implementation (SQLite, PostgreSQL, Redis for carts) runs the same tests,
// so they all mean the same thing.
//
// Usage, from an implementation's _test.go:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Stores {
//			db := openFreshDB(t) // a new, migrated, empty database
//			return storetest.Stores{Catalog: db, Loader: db, Users: db, Checkout: db}
//		})
//	}
//
// Subtests run in parallel and each calls open once, so open must return
// stores that share nothing with the stores of other calls (a fresh file,
// database or schema). The suite loads FixtureSize generated products into
// every relational store it opens. The suite assumes nothing about the
// engine beyond the interfaces' documentation.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/briskhq/brisk/internal/auth"
	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/checkout"
)

// Stores are the relational stores under test; one implementation usually
// provides all four.
type Stores struct {
	Catalog  catalog.Store
	Loader   catalog.Loader
	Users    auth.Store
	Checkout checkout.Store
}

// FixtureSize is how many products of catalog.Generate each test loads.
const FixtureSize = 200

type test struct {
	name string
	fn   func(t *testing.T, s Stores)
}

// Run runs the contract tests of the catalog, account and checkout stores.
// Each subtest is parallel and gets fresh stores from open, loaded with
// catalog.Generate(FixtureSize).
func Run(t *testing.T, open func(t *testing.T) Stores) {
	var tests []test
	tests = append(tests, catalogTests...)
	tests = append(tests, userTests...)
	tests = append(tests, checkoutTests...)
	tests = append(tests, releaseTests...)
	tests = append(tests, auditTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			load(t, s)
			tc.fn(t, s)
		})
	}
}

// fixture returns the generated products every relational test starts with.
func fixture() []catalog.Product { return catalog.Generate(FixtureSize) }

func load(t *testing.T, s Stores) {
	t.Helper()
	if err := s.Loader.LoadProducts(t.Context(), fixture()); err != nil {
		t.Fatalf("LoadProducts(%d products) = %v", FixtureSize, err)
	}
}

// wantKind fails the test unless err is of the given kinds (errors.Is each).
func wantKind(t *testing.T, op string, err error, kinds ...error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: err = nil, want %v", op, kinds)
		return
	}
	for _, k := range kinds {
		if !errors.Is(err, k) {
			t.Errorf("%s: err = %v, want it to match %v", op, err, k)
		}
	}
}

var orderSeq atomic.Uint64

// newOrderID returns a UUIDv7-shaped id: ids made later, or later in the
// same millisecond, sort higher, as the checkout's real ids do.
func newOrderID(at time.Time) string {
	seq := orderSeq.Add(1)
	ms := uint64(at.UnixMilli())
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x",
		ms>>16, ms&0xffff, (seq>>60)&0xfff, 0x8000|(seq>>48)&0x0fff, seq&0xffff_ffff_ffff)
}

// stock returns the stock accounting of the given products by id.
func stock(t *testing.T, s Stores, ids ...int64) map[int64]catalog.Stock {
	t.Helper()
	st, err := s.Catalog.Stock(t.Context(), ids)
	if err != nil {
		t.Fatalf("Stock(%v) = %v", ids, err)
	}
	m := make(map[int64]catalog.Stock, len(st))
	for _, x := range st {
		m[x.ProductID] = x
	}
	if len(ids) > 0 && len(m) != len(ids) {
		t.Fatalf("Stock(%v) returned %d products, want %d", ids, len(m), len(ids))
	}
	return m
}

// checkInvariant checks initial = available + reserved + sold, all parts
// non-negative, for every product.
func checkInvariant(t *testing.T, s Stores) {
	t.Helper()
	all, err := s.Catalog.Stock(t.Context(), nil)
	if err != nil {
		t.Fatalf("Stock(all) = %v", err)
	}
	if len(all) < FixtureSize {
		t.Errorf("Stock(all) returned %d products, want at least %d", len(all), FixtureSize)
	}
	for _, x := range all {
		if x.Available < 0 || x.Reserved < 0 || x.Sold < 0 || x.Initial != x.Available+x.Reserved+x.Sold {
			t.Errorf("stock invariant broken: %+v", x)
		}
	}
}

// sameProduct reports how got differs from want, or "".
func sameProduct(got, want catalog.Product) string {
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		return fmt.Sprintf("UpdatedAt = %v, want %v", got.UpdatedAt, want.UpdatedAt)
	}
	got.UpdatedAt, want.UpdatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}
