package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/briskhq/brisk/internal/catalog"
	"github.com/briskhq/brisk/internal/derrors"
)

var (
	_ catalog.Store  = (*DB)(nil)
	_ catalog.Loader = (*DB)(nil)
)

const productCols = `id, sku, name, description, category, price_amount, currency, available, version, updated_at`

func scanProduct(row pgx.Row) (catalog.Product, error) {
	var p catalog.Product
	err := row.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.Category,
		&p.Price.Amount, &p.Price.Currency, &p.Available, &p.Version, &p.UpdatedAt)
	p.UpdatedAt = p.UpdatedAt.UTC()
	return p, err
}

// Product returns one product, or an error of kind derrors.NotFound.
func (db *DB) Product(ctx context.Context, id int64) (catalog.Product, error) {
	p, err := scanProduct(db.pool.QueryRow(ctx, `SELECT `+productCols+` FROM products WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return catalog.Product{}, derrors.New(derrors.NotFound, "product %d not found", id)
	}
	if err != nil {
		return catalog.Product{}, wrapErr("get product", err)
	}
	return p, nil
}

// Products returns the products with the given ids that exist.
func (db *DB) Products(ctx context.Context, ids []int64) (map[int64]catalog.Product, error) {
	out := make(map[int64]catalog.Product, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+productCols+` FROM products WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrapErr("get products", err)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, wrapErr("get products", err)
		}
		out[p.ID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("get products", err)
	}
	return out, nil
}

// tsQuery builds a to_tsquery('simple', ...) argument from search terms:
// all terms must match, the last one as a prefix. Terms are letters and
// digits only (catalog.SearchTerms), so no user syntax reaches PostgreSQL.
func tsQuery(terms []string) string {
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" & ")
		}
		b.WriteString("'" + t + "'")
		if i == len(terms)-1 {
			b.WriteString(":*")
		}
	}
	return b.String()
}

// ListProducts returns a page of products matching q, by id ascending.
// Text that has no searchable word (only punctuation, say) matches nothing.
func (db *DB) ListProducts(ctx context.Context, q catalog.Query) (catalog.Page, error) {
	limit := q.Limit
	if limit < 1 || limit > catalog.MaxLimit {
		limit = catalog.DefaultLimit
	}
	var sb strings.Builder
	sb.WriteString(`SELECT ` + productCols + ` FROM products WHERE id > $1`)
	args := []any{q.AfterID}
	if q.Category != "" {
		args = append(args, q.Category)
		fmt.Fprintf(&sb, ` AND category = $%d`, len(args))
	}
	if strings.TrimSpace(q.Text) != "" {
		terms := catalog.SearchTerms(q.Text)
		if len(terms) == 0 {
			return catalog.Page{Items: []catalog.Product{}}, nil
		}
		args = append(args, tsQuery(terms))
		fmt.Fprintf(&sb, ` AND search @@ to_tsquery('simple', $%d)`, len(args))
	}
	args = append(args, limit+1)
	fmt.Fprintf(&sb, ` ORDER BY id LIMIT $%d`, len(args))

	rows, err := db.pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return catalog.Page{}, wrapErr("list products", err)
	}
	defer rows.Close()
	page := catalog.Page{Items: make([]catalog.Product, 0, limit)}
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return catalog.Page{}, wrapErr("list products", err)
		}
		page.Items = append(page.Items, p)
	}
	if err := rows.Err(); err != nil {
		return catalog.Page{}, wrapErr("list products", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextAfterID = page.Items[limit-1].ID
	}
	return page, nil
}

// Categories returns all categories with their product counts, by slug.
func (db *DB) Categories(ctx context.Context) ([]catalog.Category, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT c.slug, c.name, count(p.id)
		FROM categories c LEFT JOIN products p ON p.category = c.slug
		GROUP BY c.slug, c.name
		ORDER BY c.slug`)
	if err != nil {
		return nil, wrapErr("list categories", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Category, error) {
		var c catalog.Category
		err := r.Scan(&c.Slug, &c.Name, &c.Products)
		return c, err
	})
	if err != nil {
		return nil, wrapErr("list categories", err)
	}
	return cs, nil
}

// UpdateProduct applies u, bumps Version and returns the new product.
// Setting Available moves Initial by the same difference.
func (db *DB) UpdateProduct(ctx context.Context, id int64, u catalog.Update) (catalog.Product, error) {
	if u.Available != nil && *u.Available < 0 {
		return catalog.Product{}, derrors.New(derrors.Invalid, "available must not be negative")
	}
	var amount *int64
	var currency *string
	if u.Price != nil {
		if u.Price.Amount < 0 || u.Price.Currency == "" {
			return catalog.Product{}, derrors.New(derrors.Invalid, "price must be a non-negative amount with a currency")
		}
		amount, currency = &u.Price.Amount, &u.Price.Currency
	}
	// In SET, column references on the right read the old row, so initial
	// moves by exactly the change of available.
	p, err := scanProduct(db.pool.QueryRow(ctx, `
		UPDATE products SET
			name = COALESCE($2, name),
			description = COALESCE($3, description),
			price_amount = COALESCE($4, price_amount),
			currency = COALESCE($5, currency),
			initial = initial + COALESCE($6, available) - available,
			available = COALESCE($6, available),
			version = version + 1,
			updated_at = $7
		WHERE id = $1
		RETURNING `+productCols,
		id, u.Name, u.Description, amount, currency, u.Available, time.Now().UTC().Truncate(time.Microsecond)))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return catalog.Product{}, derrors.New(derrors.NotFound, "product %d not found", id)
	case pgCode(err) == codeCheckViolation:
		return catalog.Product{}, derrors.Wrap(derrors.Invalid, err, "the update breaks a stock rule")
	case err != nil:
		return catalog.Product{}, wrapErr("update product", err)
	}
	return p, nil
}

// Stock returns the stock accounting of the given products (all when ids
// is empty), by product id.
func (db *DB) Stock(ctx context.Context, ids []int64) ([]catalog.Stock, error) {
	q := `SELECT id, initial, available, reserved, sold FROM products`
	var args []any
	if len(ids) > 0 {
		q += ` WHERE id = ANY($1)`
		args = append(args, ids)
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, wrapErr("get stock", err)
	}
	st, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Stock, error) {
		var s catalog.Stock
		err := r.Scan(&s.ProductID, &s.Initial, &s.Available, &s.Reserved, &s.Sold)
		return s, err
	})
	if err != nil {
		return nil, wrapErr("get stock", err)
	}
	return st, nil
}

// loadChunk is how many products one INSERT ... SELECT FROM unnest(...) carries.
const loadChunk = 1000

// LoadProducts inserts products (ids given) with Initial = Available and
// creates their categories; existing ids (or SKUs) are left untouched, so
// a load that failed half-way can simply run again. Rows go in chunks of
// unnest arrays (unlike COPY, that can skip existing rows, and CockroachDB
// runs it), several chunks at once: the server's cost is mostly building
// the full-text vectors and their GIN index, which then uses every core.
func (db *DB) LoadProducts(ctx context.Context, ps []catalog.Product) error {
	if len(ps) == 0 {
		return nil
	}
	var slugs []string
	for _, p := range ps {
		slugs = append(slugs, p.Category)
	}
	slices.Sort(slugs)
	slugs = slices.Compact(slugs)
	names := make([]string, len(slugs))
	for i, s := range slugs {
		names[i] = catalog.CategoryName(s)
	}
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO categories (slug, name) SELECT * FROM unnest($1::text[], $2::text[])
		ON CONFLICT DO NOTHING`, slugs, names); err != nil {
		return wrapErr("load categories", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(2, runtime.GOMAXPROCS(0)))
	for chunk := range slices.Chunk(ps, loadChunk) {
		g.Go(func() error { return db.loadChunk(gctx, chunk, now) })
	}
	err := g.Wait()
	if pgCode(err) == codeCheckViolation {
		return derrors.Wrap(derrors.Invalid, err, "a product has negative stock or price")
	}
	return wrapErr("load products", err)
}

func (db *DB) loadChunk(ctx context.Context, chunk []catalog.Product, now time.Time) error {
	n := len(chunk)
	var (
		ids, amounts, avail, versions = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		skus, names, descs, cats      = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		currencies                    = make([]string, n)
		updated                       = make([]time.Time, n)
	)
	for i, p := range chunk {
		ids[i], skus[i], names[i], descs[i], cats[i] = p.ID, p.SKU, p.Name, p.Description, p.Category
		amounts[i], currencies[i], avail[i] = p.Price.Amount, p.Price.Currency, p.Available
		versions[i], updated[i] = max(p.Version, 1), p.UpdatedAt
		if p.UpdatedAt.IsZero() {
			updated[i] = now
		}
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO products (id, sku, name, description, category, price_amount, currency,
				initial, available, reserved, sold, version, updated_at)
			SELECT id, sku, name, description, category, amount, currency, avail, avail, 0, 0, version, updated
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
				$7::text[], $8::bigint[], $9::bigint[], $10::timestamptz[])
				AS t(id, sku, name, description, category, amount, currency, avail, version, updated)
			ON CONFLICT DO NOTHING`,
			ids, skus, names, descs, cats, amounts, currencies, avail, versions, updated)
		return err
	})
}

// CountProducts returns how many products exist.
func (db *DB) CountProducts(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&n); err != nil {
		return 0, wrapErr("count products", err)
	}
	return n, nil
}
