package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
)

// Sizes of the catalog pages.
const (
	featuredProducts = 12
	pageProducts     = 24
)

// catalogCacheControl is the Cache-Control of public catalog pages: the
// same freshness as the API's listing responses.
const catalogCacheControl = "public, max-age=30, stale-while-revalidate=60"

// categoryTTL bounds how stale the category list on the home page may be.
const categoryTTL = 30 * time.Second

type categoryCache struct {
	list    []catalog.Category
	expires time.Time
}

// categories returns the category list, re-read at most every categoryTTL
// (it changes only when products are loaded).
func (h *Handler) categories(ctx context.Context) ([]catalog.Category, error) {
	if c := h.cats.Load(); c != nil && time.Now().Before(c.expires) {
		return c.list, nil
	}
	h.catMu.Lock()
	defer h.catMu.Unlock()
	if c := h.cats.Load(); c != nil && time.Now().Before(c.expires) {
		return c.list, nil
	}
	list, err := h.cfg.Catalog.Categories(ctx)
	if err != nil {
		return nil, err
	}
	h.cats.Store(&categoryCache{list: list, expires: time.Now().Add(categoryTTL)})
	return list, nil
}

type homeData struct {
	Categories []catalog.Category
	Featured   []catalog.Product
}

func (h *Handler) home(r *http.Request) (string, view, error) {
	cats, err := h.categories(r.Context())
	if err != nil {
		return "", view{}, err
	}
	page, err := h.cfg.Catalog.ListProducts(r.Context(), catalog.Query{Limit: featuredProducts})
	if err != nil {
		return "", view{}, err
	}
	return "home", view{
		Title: "brisk — fast checkout, every day", Page: "home",
		Data:         homeData{Categories: cats, Featured: page.Items},
		CacheControl: catalogCacheControl,
	}, nil
}

// listData is a page of products: a category or search results.
type listData struct {
	Heading  string
	Summary  string
	Items    []catalog.Product
	NextURL  string // empty on the last page
	Empty    string // shown when there are no items
	Category string
}

func (h *Handler) category(r *http.Request) (string, view, error) {
	slug := r.PathValue("slug")
	q, err := catalog.ParseQuery(url.Values{"category": {slug}, "cursor": cursorParam(r), "limit": {strconv.Itoa(pageProducts)}})
	if err != nil {
		return "", view{}, err
	}
	page, err := h.cfg.Catalog.ListProducts(r.Context(), q)
	if err != nil {
		return "", view{}, err
	}
	if len(page.Items) == 0 && q.AfterID == 0 {
		return "", view{}, derrors.New(derrors.NotFound, "There is no category %q.", slug)
	}
	name := catalog.CategoryName(slug)
	d := listData{Heading: name, Items: page.Items, Category: slug, Empty: "No more products in " + name + "."}
	if page.NextAfterID != 0 {
		d.NextURL = "/c/" + url.PathEscape(slug) + "?cursor=" + url.QueryEscape(catalog.EncodeCursor(page.NextAfterID))
	}
	return "list", view{Title: name, Page: "list", Data: d, CacheControl: catalogCacheControl}, nil
}

func (h *Handler) search(r *http.Request) (string, view, error) {
	text := r.URL.Query().Get("q")
	vals := url.Values{"q": {text}, "cursor": cursorParam(r), "limit": {strconv.Itoa(pageProducts)}}
	if c := r.URL.Query().Get("category"); c != "" {
		vals.Set("category", c)
	}
	q, err := catalog.ParseQuery(vals)
	if err != nil {
		return "", view{}, err
	}
	page, err := h.cfg.Catalog.ListProducts(r.Context(), q)
	if err != nil {
		return "", view{}, err
	}
	heading := "All products"
	if q.Text != "" {
		heading = "Results for “" + q.Text + "”"
	}
	d := listData{Heading: heading, Items: page.Items, Empty: "No products match “" + q.Text + "”. Try another word."}
	if page.NextAfterID != 0 {
		next := url.Values{"q": {q.Text}, "cursor": {catalog.EncodeCursor(page.NextAfterID)}}
		if q.Category != "" {
			next.Set("category", q.Category)
		}
		d.NextURL = "/search?" + next.Encode()
	}
	return "list", view{Title: heading, Page: "list", Q: q.Text, Data: d, CacheControl: catalogCacheControl}, nil
}

// cursorParam returns the cursor query parameter as url.Values wants it.
func cursorParam(r *http.Request) []string {
	return []string{r.URL.Query().Get("cursor")}
}

func (h *Handler) product(r *http.Request) (string, view, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return "", view{}, derrors.New(derrors.NotFound, "There is no such product.")
	}
	p, err := h.cfg.Catalog.Product(r.Context(), id)
	if err != nil {
		return "", view{}, err
	}
	return "product", view{Title: p.Name, Page: "product", Data: p, CacheControl: catalogCacheControl}, nil
}

func (h *Handler) notFound(r *http.Request) (string, view, error) {
	return "", view{}, derrors.New(derrors.NotFound, "There is no page at %s.", r.URL.Path)
}
