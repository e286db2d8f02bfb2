// Package catalog holds products, categories and the listing/search query.
// Stock lives on the product: Available can be sold, Reserved is held by
// pending orders, Sold by paid orders, and Initial = Available + Reserved +
// Sold at all times.
package catalog

import (
	"context"
	"time"

	"github.com/briskhq/brisk/internal/money"
)

// Product is one item of the catalog.
type Product struct {
	ID          int64       `json:"id"`
	SKU         string      `json:"sku"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Category    string      `json:"category"`
	Price       money.Money `json:"price"`
	Available   int64       `json:"available"`
	Version     int64       `json:"version"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// Stock is the full stock accounting of one product.
type Stock struct {
	ProductID int64 `json:"product_id"`
	Initial   int64 `json:"initial"`
	Available int64 `json:"available"`
	Reserved  int64 `json:"reserved"`
	Sold      int64 `json:"sold"`
}

// Category is a group of products.
type Category struct {
	Slug     string `json:"slug"`
	Name     string `json:"name"`
	Products int64  `json:"products"`
}

// Query selects a page of products. Results are ordered by id ascending,
// which is stable under concurrent inserts and cheap to page with a cursor.
type Query struct {
	Text     string // full-text query; empty: no text filter
	Category string // category slug; empty: all categories
	AfterID  int64  // keyset cursor: only ids greater than this
	Limit    int    // 1..MaxLimit
}

// Page is one page of a listing. NextAfterID is 0 on the last page.
type Page struct {
	Items       []Product
	NextAfterID int64
}

// Update changes a product through the admin API. Nil fields stay as they
// are. Setting Available adjusts Initial by the same difference, so the
// stock invariant keeps holding.
type Update struct {
	Name        *string
	Description *string
	Price       *money.Money
	Available   *int64
}

// Store is the catalog's persistence. Implementations: sqlite, postgres.
type Store interface {
	// Product returns one product, or an error of kind derrors.NotFound.
	Product(ctx context.Context, id int64) (Product, error)
	// Products returns the products with the given ids that exist.
	Products(ctx context.Context, ids []int64) (map[int64]Product, error)
	// ListProducts returns a page of products matching q (q is valid).
	ListProducts(ctx context.Context, q Query) (Page, error)
	// Categories returns all categories with their product counts, by slug.
	Categories(ctx context.Context) ([]Category, error)
	// UpdateProduct applies u, bumps Version and returns the new product.
	// Available may not go below zero (derrors.Invalid).
	UpdateProduct(ctx context.Context, id int64, u Update) (Product, error)
	// Stock returns the stock accounting of the given products (all when ids is empty).
	Stock(ctx context.Context, ids []int64) ([]Stock, error)
}
