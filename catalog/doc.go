// Package catalog keeps the record of every job and task in one SQLite file, which users query
// with SQL (`mapflow sql`). The tables and their columns are described in schema.go.
//
// # Design
//
// The catalog is an ordinary SQLite database in WAL mode, opened with modernc.org/sqlite (no
// cgo). WAL lets readers (`mapflow status`, `mapflow sql`) query a job while its driver writes
// it, and synchronous=NORMAL makes a commit cost no fsync: a crash of the machine may lose the
// last commits but never corrupts the file.
//
// A Catalog holds two connection pools on the file: one writing connection, whose transactions
// begin with BEGIN IMMEDIATE, and a few query-only connections for reads. Several processes
// (drivers of concurrent jobs, the CLI) may write one file: SQLite serializes their write
// transactions, a writer waits for the lock (busy_timeout), and a transaction that still finds
// the database busy is retried whole with backoff, so "database is locked" does not reach a
// user unless another process holds the lock for minutes.
//
// Task rows are the hot path: a job of a million tasks writes a million rows. PutTasks writes a
// batch in one transaction with multi-row INSERT ... ON CONFLICT DO UPDATE statements (500 rows
// each) prepared once per Catalog and reused, and builds their arguments without reflection.
//
// A job that fills the disk must still record how it ended. Open keeps a reserve file of
// 256 KiB beside the catalog (catalog.db-reserve) when there is room for one, and the write of a
// job's row deletes it and tries again when it finds the disk full.
//
// The schema is versioned with PRAGMA user_version; Open applies the missing migrations in
// one transaction and refuses a catalog written by a newer mapflow.
//
// Reader is the read-only view for user SQL. Opening the file read-only (mode=ro) and setting
// query_only are not enough on their own: ATTACH and VACUUM INTO can still create files and a
// query can turn query_only off. Reader therefore also installs an SQLite authorizer that
// admits only reads, sets SQLITE_LIMIT_ATTACHED to 0, and accepts one statement that starts
// as a query does.
package catalog
