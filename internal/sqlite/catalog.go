package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
)

const productCols = `id, sku, name, description, category, price_amount, currency, available, version, updated_at`

// The listing queries, one per shape, so each keeps a simple plan:
// category listings use the (category, id) index; text queries walk the
// FTS5 index in rowid order, which FTS5 supports natively.
const (
	listAll = `SELECT ` + productCols + ` FROM products
		WHERE id > ? ORDER BY id LIMIT ?`
	listCategory = `SELECT ` + productCols + ` FROM products
		WHERE category = ? AND id > ? ORDER BY id LIMIT ?`
	listText = `SELECT p.id, p.sku, p.name, p.description, p.category, p.price_amount, p.currency, p.available, p.version, p.updated_at
		FROM products_fts f JOIN products p ON p.id = f.rowid
		WHERE products_fts MATCH ? AND f.rowid > ? ORDER BY f.rowid LIMIT ?`
	listTextCategory = `SELECT p.id, p.sku, p.name, p.description, p.category, p.price_amount, p.currency, p.available, p.version, p.updated_at
		FROM products_fts f JOIN products p ON p.id = f.rowid
		WHERE products_fts MATCH ? AND f.rowid > ? AND p.category = ? ORDER BY f.rowid LIMIT ?`
)

type scanner interface{ Scan(dest ...any) error }

func scanProduct(s scanner) (catalog.Product, error) {
	var p catalog.Product
	var updated int64
	err := s.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.Category,
		&p.Price.Amount, &p.Price.Currency, &p.Available, &p.Version, &updated)
	p.UpdatedAt = fromMicros(updated)
	return p, err
}

// Product returns one product, or an error of kind derrors.NotFound.
func (db *DB) Product(ctx context.Context, id int64) (catalog.Product, error) {
	row, err := db.readRow(ctx, `SELECT `+productCols+` FROM products WHERE id = ?`, id)
	if err != nil {
		return catalog.Product{}, fmt.Errorf("get product %d: %w", id, err)
	}
	p, err := scanProduct(row)
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Product{}, derrors.New(derrors.NotFound, "product %d not found", id)
	}
	if err != nil {
		return catalog.Product{}, fmt.Errorf("get product %d: %w", id, err)
	}
	return p, nil
}

// Products returns the products with the given ids that exist.
func (db *DB) Products(ctx context.Context, ids []int64) (map[int64]catalog.Product, error) {
	out := make(map[int64]catalog.Product, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.read(ctx, `SELECT `+productCols+` FROM products
		WHERE id IN (SELECT value FROM json_each(?))`, idList(ids))
	if err != nil {
		return nil, fmt.Errorf("get products: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, fmt.Errorf("get products: %w", err)
		}
		out[p.ID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get products: %w", err)
	}
	return out, nil
}

// matchExpr builds an FTS5 query from catalog.SearchTerms: every term must
// match (implicit AND), the last one as a prefix. Terms hold only letters
// and digits, so quoting them keeps any FTS5 syntax out.
func matchExpr(terms []string) string {
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(t)
		b.WriteByte('"')
	}
	b.WriteByte('*')
	return b.String()
}

// ListProducts returns a page of products matching q, by id ascending.
// A text query with no searchable terms does not filter.
func (db *DB) ListProducts(ctx context.Context, q catalog.Query) (catalog.Page, error) {
	if q.Limit < 1 || q.Limit > catalog.MaxLimit {
		return catalog.Page{}, derrors.New(derrors.Invalid, "limit must be from 1 to %d", catalog.MaxLimit)
	}
	var (
		query string
		args  []any
	)
	terms := catalog.SearchTerms(q.Text)
	limit := q.Limit + 1 // one more tells whether there is a next page
	switch {
	case len(terms) > 0 && q.Category != "":
		query, args = listTextCategory, []any{matchExpr(terms), q.AfterID, q.Category, limit}
	case len(terms) > 0:
		query, args = listText, []any{matchExpr(terms), q.AfterID, limit}
	case q.Category != "":
		query, args = listCategory, []any{q.Category, q.AfterID, limit}
	default:
		query, args = listAll, []any{q.AfterID, limit}
	}
	rows, err := db.read(ctx, query, args...)
	if err != nil {
		return catalog.Page{}, fmt.Errorf("list products: %w", err)
	}
	defer rows.Close()
	page := catalog.Page{Items: make([]catalog.Product, 0, q.Limit)}
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return catalog.Page{}, fmt.Errorf("list products: %w", err)
		}
		page.Items = append(page.Items, p)
	}
	if err := rows.Err(); err != nil {
		return catalog.Page{}, fmt.Errorf("list products: %w", err)
	}
	if len(page.Items) > q.Limit {
		page.Items = page.Items[:q.Limit]
		page.NextAfterID = page.Items[q.Limit-1].ID
	}
	return page, nil
}

// Categories returns all categories with their product counts, by slug.
func (db *DB) Categories(ctx context.Context) ([]catalog.Category, error) {
	rows, err := db.read(ctx, `SELECT c.slug, c.name, count(p.id)
		FROM categories c LEFT JOIN products p ON p.category = c.slug
		GROUP BY c.slug, c.name ORDER BY c.slug`)
	if err != nil {
		return nil, fmt.Errorf("list categories: %w", err)
	}
	defer rows.Close()
	var cs []catalog.Category
	for rows.Next() {
		var c catalog.Category
		if err := rows.Scan(&c.Slug, &c.Name, &c.Products); err != nil {
			return nil, fmt.Errorf("list categories: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list categories: %w", err)
	}
	return cs, nil
}

// UpdateProduct applies u, bumps Version and returns the new product.
// Setting Available moves Initial by the same difference. In an UPDATE
// every expression reads the old row, so "initial + (new - available)"
// uses the available before the change.
func (db *DB) UpdateProduct(ctx context.Context, id int64, u catalog.Update) (catalog.Product, error) {
	var name, desc, amount, currency, available any
	if u.Name != nil {
		name = *u.Name
	}
	if u.Description != nil {
		desc = *u.Description
	}
	if u.Price != nil {
		if u.Price.Amount < 0 || u.Price.Currency == "" {
			return catalog.Product{}, derrors.New(derrors.Invalid, "price must be a non-negative amount with a currency")
		}
		amount, currency = u.Price.Amount, u.Price.Currency
	}
	if u.Available != nil {
		if *u.Available < 0 {
			return catalog.Product{}, derrors.New(derrors.Invalid, "available must not be negative")
		}
		available = *u.Available
	}
	var p catalog.Product
	row, err := db.writeRow(ctx, `UPDATE products SET
			name = coalesce(?1, name),
			description = coalesce(?2, description),
			price_amount = coalesce(?3, price_amount),
			currency = coalesce(?4, currency),
			initial = initial + coalesce(?5 - available, 0),
			available = coalesce(?5, available),
			version = version + 1,
			updated_at = ?6
		WHERE id = ?7
		RETURNING `+productCols,
		name, desc, amount, currency, available, micros(time.Now()), id)
	if err == nil {
		p, err = scanProduct(row)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return catalog.Product{}, derrors.New(derrors.NotFound, "product %d not found", id)
	case isCheck(err):
		return catalog.Product{}, derrors.Wrap(derrors.Invalid, err, "update breaks a stock rule")
	case err != nil:
		return catalog.Product{}, fmt.Errorf("update product %d: %w", id, err)
	}
	return p, nil
}

// writeRow runs a single-row statement (UPDATE ... RETURNING) on the write
// pool outside a transaction.
func (db *DB) writeRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	s, err := db.stmt(ctx, true, query)
	if err != nil {
		return nil, err
	}
	return s.QueryRowContext(ctx, args...), nil
}

// Stock returns the stock accounting of the given products (all when ids
// is empty), by product id.
func (db *DB) Stock(ctx context.Context, ids []int64) ([]catalog.Stock, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if len(ids) == 0 {
		rows, err = db.read(ctx, `SELECT id, initial, available, reserved, sold FROM products ORDER BY id`)
	} else {
		rows, err = db.read(ctx, `SELECT id, initial, available, reserved, sold FROM products
			WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`, idList(ids))
	}
	if err != nil {
		return nil, fmt.Errorf("get stock: %w", err)
	}
	defer rows.Close()
	var out []catalog.Stock
	for rows.Next() {
		var s catalog.Stock
		if err := rows.Scan(&s.ProductID, &s.Initial, &s.Available, &s.Reserved, &s.Sold); err != nil {
			return nil, fmt.Errorf("get stock: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get stock: %w", err)
	}
	return out, nil
}

// loadRow is one product as LoadProducts passes it to SQLite in JSON.
type loadRow struct {
	ID          int64  `json:"id"`
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Category    string `json:"category"`
	CatName     string `json:"category_name"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	Available   int64  `json:"available"`
	Version     int64  `json:"version"`
	UpdatedAt   int64  `json:"updated_at"`
}

// loadBatch is how many products one INSERT statement carries; a load of
// at least optimizeAfter products ends by optimizing the search index.
const (
	loadBatch     = 5000
	optimizeAfter = 1000
)

// LoadProducts inserts products (ids given) with Initial = Available in one
// transaction, creating their categories; existing ids are left untouched.
// Rows go in as a JSON array, a few thousand per INSERT ... SELECT: the
// full-text index then takes them in one batch, where one statement per
// row would make FTS5 write and merge a segment per row (about 10x slower).
func (db *DB) LoadProducts(ctx context.Context, ps []catalog.Product) error {
	start := time.Now()
	rows := make([]loadRow, len(ps))
	for i, p := range ps {
		if p.Available < 0 || p.Price.Amount < 0 {
			return derrors.New(derrors.Invalid, "load products: product %d has negative stock or price", p.ID)
		}
		r := loadRow{
			ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description,
			Category: p.Category, CatName: catalog.CategoryName(p.Category),
			Amount: p.Price.Amount, Currency: p.Price.Currency, Available: p.Available,
			Version: max(p.Version, 1), UpdatedAt: micros(start),
		}
		if !p.UpdatedAt.IsZero() {
			r.UpdatedAt = micros(p.UpdatedAt)
		}
		rows[i] = r
	}
	err := db.write(ctx, func(t *tx) error {
		for len(rows) > 0 {
			n := min(len(rows), loadBatch)
			batch, err := json.Marshal(rows[:n])
			if err != nil {
				return err
			}
			rows = rows[n:]
			if _, err := t.exec(`INSERT INTO categories (slug, name)
				SELECT DISTINCT value ->> 'category', value ->> 'category_name' FROM json_each(?) WHERE true
				ON CONFLICT (slug) DO NOTHING`, batch); err != nil {
				return fmt.Errorf("insert categories: %w", err)
			}
			if _, err := t.exec(`INSERT INTO products
				(id, sku, name, description, category, price_amount, currency, initial, available, reserved, sold, version, updated_at)
				SELECT value ->> 'id', value ->> 'sku', value ->> 'name', value ->> 'description', value ->> 'category',
					value ->> 'amount', value ->> 'currency', value ->> 'available', value ->> 'available', 0, 0,
					value ->> 'version', value ->> 'updated_at'
				FROM json_each(?) WHERE true
				ON CONFLICT (id) DO NOTHING`, batch); err != nil {
				if isUnique(err) {
					return derrors.Wrap(derrors.Conflict, err, "a product with the same sku already exists")
				}
				return fmt.Errorf("insert products: %w", err)
			}
		}
		if len(ps) >= optimizeAfter {
			// Merge the index segments the batches wrote into one:
			// searches then read one b-tree per term (about 2x faster).
			if _, err := t.exec(`INSERT INTO products_fts (products_fts) VALUES ('optimize')`); err != nil {
				return fmt.Errorf("optimize search index: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load products: %w", err)
	}
	db.logger.Info("products loaded", "count", len(ps), "duration", time.Since(start))
	return nil
}

// CountProducts returns how many products exist.
func (db *DB) CountProducts(ctx context.Context) (int64, error) {
	row, err := db.readRow(ctx, `SELECT count(*) FROM products`)
	if err != nil {
		return 0, fmt.Errorf("count products: %w", err)
	}
	var n int64
	if err := row.Scan(&n); err != nil {
		return 0, fmt.Errorf("count products: %w", err)
	}
	return n, nil
}
