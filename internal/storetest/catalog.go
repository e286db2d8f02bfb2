package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
	"github.com/briskhq/brisk/internal/money"
)

var catalogTests = []test{
	{"catalog/Product", testProduct},
	{"catalog/Products", testProducts},
	{"catalog/ListProducts/all", testListAll},
	{"catalog/ListProducts/category", testListCategory},
	{"catalog/ListProducts/text", testListText},
	{"catalog/ListProducts/text after update", testListTextAfterUpdate},
	{"catalog/Categories", testCategories},
	{"catalog/UpdateProduct", testUpdateProduct},
	{"catalog/LoadProducts", testLoadProducts},
}

func testProduct(t *testing.T, s Stores) {
	fx := fixture()
	for _, i := range []int{0, 1, 99, FixtureSize - 1} {
		want := fx[i]
		got, err := s.Catalog.Product(t.Context(), want.ID)
		if err != nil {
			t.Errorf("Product(%d) = %v", want.ID, err)
			continue
		}
		if d := sameProduct(got, want); d != "" {
			t.Errorf("Product(%d): %s", want.ID, d)
		}
	}
	for _, id := range []int64{0, -1, FixtureSize + 1, 1 << 40} {
		_, err := s.Catalog.Product(t.Context(), id)
		wantKind(t, fmt.Sprintf("Product(%d)", id), err, derrors.NotFound)
	}
}

func testProducts(t *testing.T, s Stores) {
	fx := fixture()
	tests := []struct {
		name string
		ids  []int64
		want []int64
	}{
		{"none", nil, nil},
		{"one", []int64{7}, []int64{7}},
		{"several with unknown and duplicate", []int64{3, 1, 1 << 40, 3, FixtureSize}, []int64{1, 3, FixtureSize}},
		{"only unknown", []int64{FixtureSize + 1}, nil},
	}
	for _, tc := range tests {
		got, err := s.Catalog.Products(t.Context(), tc.ids)
		if err != nil {
			t.Errorf("%s: Products(%v) = %v", tc.name, tc.ids, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: Products(%v) returned %d products, want %d", tc.name, tc.ids, len(got), len(tc.want))
		}
		for _, id := range tc.want {
			p, ok := got[id]
			if !ok {
				t.Errorf("%s: Products(%v) misses %d", tc.name, tc.ids, id)
				continue
			}
			if d := sameProduct(p, fx[id-1]); d != "" {
				t.Errorf("%s: Products(%v)[%d]: %s", tc.name, tc.ids, id, d)
			}
		}
	}
}

// listAll pages through q with ListProducts and checks the paging rules:
// ids strictly ascending across pages, at most Limit per page, NextAfterID
// the last id of a page that has a next page and 0 on the last page.
func listAll(t *testing.T, s Stores, q catalog.Query) []catalog.Product {
	t.Helper()
	var all []catalog.Product
	for pages := 0; ; pages++ {
		if pages > FixtureSize+1 {
			t.Fatalf("ListProducts(%+v): paging does not end", q)
		}
		p, err := s.Catalog.ListProducts(t.Context(), q)
		if err != nil {
			t.Fatalf("ListProducts(%+v) = %v", q, err)
		}
		if len(p.Items) > q.Limit {
			t.Fatalf("ListProducts(%+v) returned %d items, more than the limit", q, len(p.Items))
		}
		for _, it := range p.Items {
			if it.ID <= q.AfterID || len(all) > 0 && it.ID <= all[len(all)-1].ID {
				t.Fatalf("ListProducts(%+v): id %d out of order", q, it.ID)
			}
			all = append(all, it)
		}
		if p.NextAfterID == 0 {
			return all
		}
		if len(p.Items) != q.Limit || p.NextAfterID != p.Items[len(p.Items)-1].ID {
			t.Fatalf("ListProducts(%+v): %d items, NextAfterID = %d, want a full page ending at NextAfterID",
				q, len(p.Items), p.NextAfterID)
		}
		q.AfterID = p.NextAfterID
	}
}

func ids(ps []catalog.Product) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func idsWhere(ps []catalog.Product, keep func(catalog.Product) bool) []int64 {
	var out []int64
	for _, p := range ps {
		if keep(p) {
			out = append(out, p.ID)
		}
	}
	return out
}

func testListAll(t *testing.T, s Stores) {
	fx := fixture()
	for _, limit := range []int{1, 7, 100, catalog.MaxLimit} {
		got := listAll(t, s, catalog.Query{Limit: limit})
		if !slices.Equal(ids(got), ids(fx)) {
			t.Errorf("listing with limit %d returned ids %v, want 1..%d", limit, ids(got), FixtureSize)
			continue
		}
		for i := range got {
			if d := sameProduct(got[i], fx[i]); d != "" {
				t.Errorf("listing with limit %d, product %d: %s", limit, fx[i].ID, d)
			}
		}
	}
	// An exact multiple of the limit: the last full page must say it is last.
	p, err := s.Catalog.ListProducts(t.Context(), catalog.Query{Limit: 100, AfterID: 100})
	if err != nil {
		t.Fatalf("ListProducts(after 100) = %v", err)
	}
	if len(p.Items) != 100 || p.NextAfterID != 0 {
		t.Errorf("ListProducts(after 100, limit 100) = %d items, NextAfterID %d; want 100, 0", len(p.Items), p.NextAfterID)
	}
	// Past the end.
	p, err = s.Catalog.ListProducts(t.Context(), catalog.Query{Limit: 10, AfterID: FixtureSize})
	if err != nil || len(p.Items) != 0 || p.NextAfterID != 0 {
		t.Errorf("ListProducts(after last) = %d items, NextAfterID %d, %v; want none", len(p.Items), p.NextAfterID, err)
	}
	// Stable: the same query twice gives the same page.
	q := catalog.Query{Limit: 13, AfterID: 40}
	a, err1 := s.Catalog.ListProducts(t.Context(), q)
	b, err2 := s.Catalog.ListProducts(t.Context(), q)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(ids(a.Items), ids(b.Items)) || a.NextAfterID != b.NextAfterID {
		t.Errorf("ListProducts(%+v) twice: %v / %v, %v / %v", q, ids(a.Items), ids(b.Items), err1, err2)
	}
}

func testListCategory(t *testing.T, s Stores) {
	fx := fixture()
	cats := []string{fx[0].Category, fx[1].Category, fx[FixtureSize-1].Category}
	for _, c := range cats {
		want := idsWhere(fx, func(p catalog.Product) bool { return p.Category == c })
		for _, limit := range []int{2, 5, catalog.MaxLimit} {
			got := listAll(t, s, catalog.Query{Category: c, Limit: limit})
			if !slices.Equal(ids(got), want) {
				t.Errorf("category %q, limit %d: ids %v, want %v", c, limit, ids(got), want)
			}
		}
	}
	if got := listAll(t, s, catalog.Query{Category: "no-such-category", Limit: 10}); len(got) != 0 {
		t.Errorf("unknown category: ids %v, want none", ids(got))
	}
}

// words returns the lower-case words of a product's searchable text, split
// as catalog.SearchTerms splits a query (which also caps their number).
func words(p catalog.Product) []string {
	text := strings.ToLower(strings.Join([]string{p.Name, p.Description, p.Category}, " "))
	return strings.FieldsFunc(text, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// matching returns the ids of products that contain every term as a word.
// The suite only uses queries for which a prefix match of the last term
// and stemming give the same answer (checked by the test), so every store
// must return exactly these.
func matching(ps []catalog.Product, text, category string, prefix bool) []int64 {
	terms := catalog.SearchTerms(text)
	return idsWhere(ps, func(p catalog.Product) bool {
		if category != "" && p.Category != category {
			return false
		}
		ws := words(p)
		for i, term := range terms {
			last := prefix && i == len(terms)-1
			if !slices.ContainsFunc(ws, func(w string) bool {
				return w == term || last && strings.HasPrefix(w, term)
			}) {
				return false
			}
		}
		return true
	})
}

// checkSearch lists text (and category) with several limits and compares
// with the products that contain the words.
func checkSearch(t *testing.T, s Stores, fx []catalog.Product, text, category string) {
	t.Helper()
	want := matching(fx, text, category, false)
	if p := matching(fx, text, category, true); !slices.Equal(p, want) {
		t.Fatalf("test bug: query %q is ambiguous between word and prefix match", text)
	}
	for _, limit := range []int{3, catalog.MaxLimit} {
		got := listAll(t, s, catalog.Query{Text: text, Category: category, Limit: limit})
		if !slices.Equal(ids(got), want) {
			t.Errorf("search %q in %q, limit %d: ids %v, want %v", text, category, limit, ids(got), want)
		}
	}
}

func testListText(t *testing.T, s Stores) {
	fx := fixture()
	walnutCat := ""
	for _, p := range fx {
		if strings.Contains(p.Name, "Walnut") {
			walnutCat = p.Category
			break
		}
	}
	tests := []struct {
		name, text, category string
		atLeast              int // guards against a fixture change making the test vacuous
	}{
		{"one word", "walnut", "", 3},
		{"upper case and punctuation", "  WALNUT!! ", "", 3},
		{"two words", "merino storage", "", 3},
		{"two words any order", "storage merino", "", 3},
		{"category word", "headphones", "", 1},
		{"every product", "brisk", "", FixtureSize},
		{"with category", "walnut", walnutCat, 1},
		{"no match", "qqqxyzzy", "", 0},
		{"one word matches, other does not", "walnut qqqxyzzy", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := len(matching(fx, tc.text, tc.category, false)); n < tc.atLeast {
				t.Fatalf("test bug: %q matches %d fixture products, want at least %d", tc.text, n, tc.atLeast)
			}
			checkSearch(t, s, fx, tc.text, tc.category)
		})
	}
	// An empty result is an empty last page.
	p, err := s.Catalog.ListProducts(t.Context(), catalog.Query{Text: "qqqxyzzy", Limit: 10})
	if err != nil || len(p.Items) != 0 || p.NextAfterID != 0 {
		t.Errorf("ListProducts(no match) = %d items, NextAfterID %d, %v; want an empty last page", len(p.Items), p.NextAfterID, err)
	}
}

func testListTextAfterUpdate(t *testing.T, s Stores) {
	fx := fixture()
	const id = 5
	old := fx[id-1]
	name, desc := "Xylophone Marimba", "A wooden xylophone for the whole family."
	if _, err := s.Catalog.UpdateProduct(t.Context(), id, catalog.Update{Name: &name, Description: &desc}); err != nil {
		t.Fatalf("UpdateProduct(%d) = %v", id, err)
	}
	fx[id-1].Name, fx[id-1].Description = name, desc
	checkSearch(t, s, fx, "xylophone", "")
	checkSearch(t, s, fx, "marimba xylophone", "")
	// The old name's words no longer find the product.
	checkSearch(t, s, fx, strings.Join(strings.Fields(old.Name)[:2], " "), "")
	// A stock-only change leaves the text index as it was.
	avail := int64(3)
	if _, err := s.Catalog.UpdateProduct(t.Context(), id, catalog.Update{Available: &avail}); err != nil {
		t.Fatalf("UpdateProduct(%d, available) = %v", id, err)
	}
	checkSearch(t, s, fx, "xylophone", "")
}

func testCategories(t *testing.T, s Stores) {
	fx := fixture()
	counts := map[string]int64{}
	for _, p := range fx {
		counts[p.Category]++
	}
	got, err := s.Catalog.Categories(t.Context())
	if err != nil {
		t.Fatalf("Categories() = %v", err)
	}
	if len(got) != len(counts) {
		t.Errorf("Categories() returned %d categories, want %d", len(got), len(counts))
	}
	for i, c := range got {
		if i > 0 && c.Slug <= got[i-1].Slug {
			t.Errorf("Categories() not ordered by slug: %q after %q", c.Slug, got[i-1].Slug)
		}
		if c.Products != counts[c.Slug] {
			t.Errorf("Categories()[%q].Products = %d, want %d", c.Slug, c.Products, counts[c.Slug])
		}
		if want := catalog.CategoryName(c.Slug); c.Name != want {
			t.Errorf("Categories()[%q].Name = %q, want %q", c.Slug, c.Name, want)
		}
	}
}

func testUpdateProduct(t *testing.T, s Stores) {
	ctx := t.Context()
	fx := fixture()
	const id = 10
	before := fx[id-1]

	price := money.Money{Amount: 12345, Currency: "USD"}
	p, err := s.Catalog.UpdateProduct(ctx, id, catalog.Update{Price: &price})
	if err != nil {
		t.Fatalf("UpdateProduct(price) = %v", err)
	}
	if p.Price != price || p.Version != before.Version+1 || p.Name != before.Name || p.Available != before.Available {
		t.Errorf("UpdateProduct(price) = %+v, want price %v, version %d, rest unchanged", p, price, before.Version+1)
	}
	if d := time.Since(p.UpdatedAt); d < -time.Minute || d > time.Minute {
		t.Errorf("UpdateProduct(price).UpdatedAt = %v, want about now", p.UpdatedAt)
	}
	got, err := s.Catalog.Product(ctx, id)
	if err != nil || sameProduct(got, p) != "" {
		t.Errorf("Product(%d) after update = %+v, %v; want %+v", id, got, err, p)
	}

	// Setting available moves initial by the same difference.
	st0 := stock(t, s, id)[id]
	avail := before.Available + 25
	p, err = s.Catalog.UpdateProduct(ctx, id, catalog.Update{Available: &avail})
	if err != nil {
		t.Fatalf("UpdateProduct(available %d) = %v", avail, err)
	}
	if p.Available != avail || p.Version != before.Version+2 {
		t.Errorf("UpdateProduct(available %d) = available %d, version %d; want %d, %d", avail, p.Available, p.Version, avail, before.Version+2)
	}
	if st := stock(t, s, id)[id]; st.Initial != st0.Initial+25 || st.Available != avail {
		t.Errorf("Stock after available +25 = %+v, want initial %d", st, st0.Initial+25)
	}
	zero := int64(0)
	if _, err := s.Catalog.UpdateProduct(ctx, id, catalog.Update{Available: &zero}); err != nil {
		t.Fatalf("UpdateProduct(available 0) = %v", err)
	}
	if st := stock(t, s, id)[id]; st.Initial != 0 || st.Available != 0 {
		t.Errorf("Stock after available 0 = %+v, want initial 0", st)
	}

	// Rejected: negative stock; nothing changes.
	neg := int64(-1)
	_, err = s.Catalog.UpdateProduct(ctx, id, catalog.Update{Available: &neg})
	wantKind(t, "UpdateProduct(available -1)", err, derrors.Invalid)
	if got, err := s.Catalog.Product(ctx, id); err != nil || got.Version != before.Version+3 || got.Available != 0 {
		t.Errorf("Product after rejected update = version %d, available %d, %v; want %d, 0", got.Version, got.Available, err, before.Version+3)
	}

	// Name and description; an empty update still bumps the version.
	name, desc := "Renamed", "New words."
	p, err = s.Catalog.UpdateProduct(ctx, id, catalog.Update{Name: &name, Description: &desc})
	if err != nil || p.Name != name || p.Description != desc || p.Price != price || p.Version != before.Version+4 {
		t.Errorf("UpdateProduct(name) = %+v, %v", p, err)
	}
	p, err = s.Catalog.UpdateProduct(ctx, id, catalog.Update{})
	if err != nil || p.Version != before.Version+5 || p.Name != name {
		t.Errorf("UpdateProduct(nothing) = %+v, %v; want version %d", p, err, before.Version+5)
	}

	// Other products are untouched.
	if got, err := s.Catalog.Product(ctx, id+1); err != nil || sameProduct(got, fx[id]) != "" {
		t.Errorf("Product(%d) = %+v, %v; want untouched %+v", id+1, got, err, fx[id])
	}
	_, err = s.Catalog.UpdateProduct(ctx, FixtureSize+1, catalog.Update{Name: &name})
	wantKind(t, "UpdateProduct(unknown)", err, derrors.NotFound)
	checkInvariant(t, s)
}

func testLoadProducts(t *testing.T, s Stores) {
	ctx := t.Context()
	count := func(want int64) {
		t.Helper()
		if n, err := s.Loader.CountProducts(ctx); err != nil || n != want {
			t.Errorf("CountProducts() = %d, %v; want %d", n, err, want)
		}
	}
	count(FixtureSize)

	// Loading again leaves existing products as they are.
	name := "Changed"
	if _, err := s.Catalog.UpdateProduct(ctx, 1, catalog.Update{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if err := s.Loader.LoadProducts(ctx, fixture()); err != nil {
		t.Fatalf("LoadProducts(again) = %v", err)
	}
	count(FixtureSize)
	if p, err := s.Catalog.Product(ctx, 1); err != nil || p.Name != name {
		t.Errorf("Product(1) after reload = %q, %v; want %q", p.Name, err, name)
	}

	// New ids are added, with their stock as initial stock.
	more := catalog.Generate(FixtureSize + 5)[FixtureSize:]
	if err := s.Loader.LoadProducts(ctx, more); err != nil {
		t.Fatalf("LoadProducts(5 more) = %v", err)
	}
	count(FixtureSize + 5)
	for _, want := range more {
		if got, err := s.Catalog.Product(ctx, want.ID); err != nil || sameProduct(got, want) != "" {
			t.Errorf("Product(%d) = %+v, %v; want %+v", want.ID, got, err, want)
		}
		if st := stock(t, s, want.ID)[want.ID]; st != (catalog.Stock{ProductID: want.ID, Initial: want.Available, Available: want.Available}) {
			t.Errorf("Stock(%d) = %+v, want initial = available = %d", want.ID, st, want.Available)
		}
	}
	cats, err := s.Catalog.Categories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range cats {
		total += c.Products
	}
	if total != FixtureSize+5 {
		t.Errorf("Categories() counts sum to %d, want %d", total, FixtureSize+5)
	}
	checkInvariant(t, s)
}
