-- Schema of the embedded store. Times are INTEGER unix microseconds (UTC),
-- the precision PostgreSQL's timestamptz keeps, so both stores agree.
-- Money is INTEGER minor units with a currency code.

-- +goose Up
CREATE TABLE categories (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE products (
    id           INTEGER PRIMARY KEY,
    sku          TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    category     TEXT    NOT NULL REFERENCES categories (slug),
    price_amount INTEGER NOT NULL CHECK (price_amount >= 0),
    currency     TEXT    NOT NULL,
    initial      INTEGER NOT NULL,
    available    INTEGER NOT NULL CHECK (available >= 0),
    reserved     INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold         INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    version      INTEGER NOT NULL DEFAULT 1,
    updated_at   INTEGER NOT NULL,
    CONSTRAINT stock_balance CHECK (initial = available + reserved + sold)
);

CREATE INDEX products_category_id ON products (category, id);

-- Full-text index over name, description and category, external content:
-- the text lives once, in products; triggers keep the index in sync. Stock
-- updates do not touch these columns, so they never fire the update trigger.
CREATE VIRTUAL TABLE products_fts USING fts5 (
    name, description, category,
    content = 'products', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

-- +goose StatementBegin
CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, name, description, category)
    VALUES (new.id, new.name, new.description, new.category);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description, category)
    VALUES ('delete', old.id, old.name, old.description, old.category);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER products_fts_update AFTER UPDATE OF name, description, category ON products
WHEN old.name IS NOT new.name OR old.description IS NOT new.description OR old.category IS NOT new.category
BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description, category)
    VALUES ('delete', old.id, old.name, old.description, old.category);
    INSERT INTO products_fts (rowid, name, description, category)
    VALUES (new.id, new.name, new.description, new.category);
END;
-- +goose StatementEnd

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE CHECK (email = lower(email)),
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('shopper', 'admin')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE cart_items (
    user_id    INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, product_id)
) WITHOUT ROWID;

CREATE TABLE orders (
    id              TEXT    PRIMARY KEY, -- UUIDv7: id order is time order
    user_id         INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    total_amount    INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    payment_id      TEXT    NOT NULL DEFAULT '',
    failure_reason  TEXT    NOT NULL DEFAULT '',
    idempotency_key TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX orders_user_id ON orders (user_id, id DESC);
CREATE INDEX orders_pending_created ON orders (created_at) WHERE status = 'pending';

CREATE TABLE order_lines (
    order_id    TEXT    NOT NULL REFERENCES orders (id),
    product_id  INTEGER NOT NULL REFERENCES products (id),
    name        TEXT    NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_amount INTEGER NOT NULL,
    currency    TEXT    NOT NULL,
    PRIMARY KEY (order_id, product_id)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    user_id         INTEGER NOT NULL,
    key             TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    order_id        TEXT    NOT NULL DEFAULT '',
    response_status INTEGER NOT NULL DEFAULT 0, -- 0: in flight
    response_body   BLOB,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT    NOT NULL,
    payload    TEXT    NOT NULL, -- JSON
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE idempotency_keys;
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE cart_items;
DROP TABLE users;
DROP TRIGGER products_fts_update;
DROP TRIGGER products_fts_delete;
DROP TRIGGER products_fts_insert;
DROP TABLE products_fts;
DROP TABLE products;
DROP TABLE categories;
