package sqlite

import "database/sql"

// PoolStats returns the state of the write pool (one connection: its
// waits are the store's write queue) and of the read pool, for saturation
// metrics.
func (db *DB) PoolStats() (write, read sql.DBStats) { return db.w.Stats(), db.r.Stats() }
