package web

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
)

// fakeCatalog is an in-memory catalog.Store over catalog.Generate.
type fakeCatalog struct {
	products []catalog.Product
	down     atomic.Bool // every call fails with derrors.Unavailable
	calls    atomic.Int64
}

func newFakeCatalog(n int) *fakeCatalog { return &fakeCatalog{products: catalog.Generate(n)} }

func (f *fakeCatalog) check() error {
	f.calls.Add(1)
	if f.down.Load() {
		return derrors.New(derrors.Unavailable, "catalog is down")
	}
	return nil
}

func (f *fakeCatalog) Product(ctx context.Context, id int64) (catalog.Product, error) {
	if err := f.check(); err != nil {
		return catalog.Product{}, err
	}
	if id < 1 || id > int64(len(f.products)) {
		return catalog.Product{}, derrors.New(derrors.NotFound, "product %d does not exist", id)
	}
	return f.products[id-1], nil
}

func (f *fakeCatalog) Products(ctx context.Context, ids []int64) (map[int64]catalog.Product, error) {
	m := map[int64]catalog.Product{}
	for _, id := range ids {
		if p, err := f.Product(ctx, id); err == nil {
			m[id] = p
		}
	}
	return m, f.check()
}

func (f *fakeCatalog) ListProducts(ctx context.Context, q catalog.Query) (catalog.Page, error) {
	if err := f.check(); err != nil {
		return catalog.Page{}, err
	}
	terms := catalog.SearchTerms(q.Text)
	var page catalog.Page
	for _, p := range f.products {
		if p.ID <= q.AfterID || (q.Category != "" && p.Category != q.Category) {
			continue
		}
		text := strings.ToLower(p.Name + " " + p.Description + " " + p.Category)
		if !allIn(text, terms) {
			continue
		}
		if len(page.Items) == q.Limit {
			page.NextAfterID = page.Items[len(page.Items)-1].ID
			break
		}
		page.Items = append(page.Items, p)
	}
	return page, nil
}

func allIn(text string, terms []string) bool {
	for _, t := range terms {
		if !strings.Contains(text, t) {
			return false
		}
	}
	return true
}

func (f *fakeCatalog) Categories(ctx context.Context) ([]catalog.Category, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, p := range f.products {
		counts[p.Category]++
	}
	var cs []catalog.Category
	for slug, n := range counts {
		cs = append(cs, catalog.Category{Slug: slug, Name: catalog.CategoryName(slug), Products: n})
	}
	slices.SortFunc(cs, func(a, b catalog.Category) int { return strings.Compare(a.Slug, b.Slug) })
	return cs, nil
}

func (f *fakeCatalog) UpdateProduct(ctx context.Context, id int64, u catalog.Update) (catalog.Product, error) {
	return catalog.Product{}, derrors.New(derrors.Invalid, "read-only fake")
}

func (f *fakeCatalog) Stock(ctx context.Context, ids []int64) ([]catalog.Stock, error) {
	return nil, nil
}
