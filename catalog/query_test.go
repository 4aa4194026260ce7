package catalog

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// readerFixture is a catalog with one job of three tasks, its writer closed, and a Reader on it.
func readerFixture(t *testing.T) (*Reader, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.CreateJob(ctx, testJob("j1", "add", t0)); err != nil {
		t.Fatal(err)
	}
	rows := []Task{
		{JobID: "j1", Index: 0, Name: "a", Params: []byte(`{"x":20,"y":20}`), Status: StatusCompleted, Attempt: 1, Start: t0, End: t0.Add(2 * time.Second), Result: []byte(`40`)},
		{JobID: "j1", Index: 1, Name: "b", Params: []byte(`{"x":10,"y":10}`), Status: StatusCompleted, Attempt: 1, Start: t0, End: t0.Add(time.Second), Result: []byte(`20`)},
		{JobID: "j1", Index: 2, Name: "c", Params: []byte(`{"x":5}`), Status: StatusFailed, Attempt: 1, Start: t0, End: t0.Add(time.Second), Exception: "KeyError", Message: "y"},
	}
	if err := c.PutTasks(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	// Work in the catalog's directory, so that relative names in statements land there.
	t.Chdir(dir)
	return r, dir
}

func TestReaderQueries(t *testing.T) {
	r, _ := readerFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		q    string
		cols []string
		rows [][]any
	}{
		{`SELECT task_index, result FROM tasks ORDER BY task_index`,
			[]string{"task_index", "result"}, [][]any{{int64(0), "40"}, {int64(1), "20"}, {int64(2), nil}}},
		{`select status, count(*) n from tasks group by status order by status;`,
			[]string{"status", "n"}, [][]any{{"Completed", int64(2)}, {"Failed", int64(1)}}},
		{`-- date functions read the times
			SELECT date(start_time), strftime('%H:%M', end_time), round(avg(run_time), 3)
			FROM tasks WHERE exception IS NULL`,
			[]string{"date(start_time)", "strftime('%H:%M', end_time)", "round(avg(run_time), 3)"},
			[][]any{{"2026-03-14", "15:09", 1.5}}},
		{`WITH RECURSIVE n(i) AS (VALUES(1) UNION ALL SELECT i+1 FROM n WHERE i < 3) SELECT sum(i) FROM n`,
			[]string{"sum(i)"}, [][]any{{int64(6)}}},
		{`SELECT json_extract(params, '$.x') AS x FROM tasks WHERE task_index = 2`,
			[]string{"x"}, [][]any{{int64(5)}}},
		{`SELECT ';' AS "a;b" /* ; */`, []string{"a;b"}, [][]any{{";"}}},
		{`PRAGMA user_version`, []string{"user_version"}, [][]any{{int64(SchemaVersion)}}},
		{`SELECT name FROM pragma_table_info('logs') ORDER BY cid`, []string{"name"},
			[][]any{{"job_id"}, {"task_index"}, {"attempt"}, {"stream"}, {"data"}}},
	} {
		cols, rows, err := r.Query(ctx, tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.q, err)
			continue
		}
		if d := cmp.Diff(tc.cols, cols); d != "" {
			t.Errorf("%s: columns (-want +got):\n%s", tc.q, d)
		}
		if d := cmp.Diff(tc.rows, rows); d != "" {
			t.Errorf("%s: rows (-want +got):\n%s", tc.q, d)
		}
	}

	cols, rows, err := r.Query(ctx, "PRAGMA table_info(tasks)")
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) == 0 || cols[1] != "name" || len(rows) != numTaskColumns {
		t.Errorf("PRAGMA table_info(tasks): columns %v, %d rows", cols, len(rows))
	}
}

// TestReaderRefusesWrites runs each writing statement through Query and, below its checks of
// the statement's text, straight through the authorizer and limits: either way it must be
// refused, no file may appear, and the catalog must not change.
func TestReaderRefusesWrites(t *testing.T) {
	r, dir := readerFixture(t)
	ctx := context.Background()
	snapshot := func() [][]any {
		t.Helper()
		_, rows, err := r.Query(ctx, `SELECT * FROM tasks ORDER BY task_index`)
		if err != nil {
			t.Fatal(err)
		}
		_, jobs, err := r.Query(ctx, `SELECT * FROM jobs`)
		if err != nil {
			t.Fatal(err)
		}
		return append(rows, jobs...)
	}
	before := snapshot()

	for _, tc := range []struct {
		q, what string // what the refusal names
		alt     string // or what the authorizer names, if that differs
		file    string // a file the statement would create
	}{
		{q: `DELETE FROM tasks`, what: "DELETE"},
		{q: `UPDATE tasks SET status = 'Completed'`, what: "UPDATE"},
		{q: `INSERT INTO jobs (job_id, name, status) VALUES ('x', 'x', 'Running')`, what: "INSERT"},
		{q: `REPLACE INTO jobs (job_id, name, status) VALUES ('x', 'x', 'Running')`, what: "REPLACE", alt: "INSERT"},
		{q: `DROP TABLE tasks`, what: "DROP TABLE"},
		{q: `CREATE TABLE t (x)`, what: "CREATE TABLE"},
		{q: `CREATE TEMP TABLE t (x)`, what: "CREATE TEMP TABLE"},
		{q: `CREATE VIEW v AS SELECT 1`, what: "CREATE VIEW"},
		{q: `CREATE TRIGGER tr AFTER INSERT ON jobs BEGIN DELETE FROM tasks; END`, what: "CREATE TRIGGER"},
		{q: `CREATE INDEX i ON tasks (host)`, what: "CREATE INDEX"},
		{q: `ALTER TABLE tasks ADD COLUMN z`, what: "ALTER TABLE"},
		{q: `ATTACH 'x.db' AS x`, what: "ATTACH", file: "x.db"},
		{q: `ATTACH DATABASE 'file:z.db?mode=rwc' AS z`, what: "ATTACH", file: "z.db"},
		{q: `VACUUM INTO 'y.db'`, what: "", file: "y.db"}, // refused by the attach limit
		{q: `PRAGMA query_only = 0`, what: "PRAGMA query_only=0"},
		{q: `PRAGMA query_only = OFF`, what: "PRAGMA query_only=OFF"},
		{q: `PRAGMA writable_schema = 1`, what: "PRAGMA writable_schema=1"},
		{q: `PRAGMA journal_mode = DELETE`, what: "PRAGMA journal_mode=DELETE"},
		{q: `PRAGMA user_version = 99`, what: "PRAGMA user_version=99"},
		{q: `PRAGMA wal_checkpoint(TRUNCATE)`, what: "PRAGMA wal_checkpoint=TRUNCATE"},
		{q: `PRAGMA optimize`, what: "PRAGMA optimize"},
		{q: `SELECT load_extension('x')`, what: "function load_extension()"},
		{q: `WITH d AS (SELECT 1) DELETE FROM tasks`, what: "DELETE"},
		{q: `SELECT * FROM pragma_query_only(0)`, what: ""},
		{q: `BEGIN`, what: "BEGIN"},
		{q: `ANALYZE`, what: "ANALYZE"},
	} {
		for _, run := range []struct {
			name string
			fn   func(context.Context, string) ([]string, [][]any, error)
		}{{"Query", r.Query}, {"authorizer", func(ctx context.Context, q string) ([]string, [][]any, error) {
			var rows [][]any
			err := r.query(ctx, q, func([]string) error { return nil }, func(row []any) error {
				rows = append(rows, append([]any(nil), row...))
				return nil
			})
			return nil, rows, err
		}}} {
			_, rows, err := run.fn(ctx, tc.q)
			switch {
			case err == nil && tc.q == `SELECT * FROM pragma_query_only(0)`:
				// pragma_query_only(0) is no table-valued function; if SQLite ever makes it
				// one, the query_only check below still tells whether it wrote the setting.
			case err == nil:
				t.Errorf("%s: %s: not refused (rows %v)", run.name, tc.q, rows)
			case tc.what != "" && !strings.Contains(err.Error(), tc.what+" is not allowed"):
				// SQLite asks about the write to sqlite_schema before the statement itself.
				if run.name == "Query" || !(strings.Contains(err.Error(), "changing the schema is not allowed") ||
					tc.alt != "" && strings.Contains(err.Error(), tc.alt+" is not allowed")) {
					t.Errorf("%s: %s: err = %v, want %q refused", run.name, tc.q, err, tc.what)
				}
			}
			if err != nil && run.name == "Query" && !errors.Is(err, ErrReadOnly) && tc.what != "" {
				t.Errorf("%s: %s: err = %v does not wrap ErrReadOnly", run.name, tc.q, err)
			}
			if tc.file != "" {
				if _, err := os.Stat(filepath.Join(dir, tc.file)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: %s created %s (stat: %v)", run.name, tc.q, tc.file, err)
				}
			}
		}
	}

	// query_only is still on, whatever was tried.
	_, rows, err := r.Query(ctx, `PRAGMA query_only`)
	if err != nil || len(rows) != 1 || rows[0][0] != int64(1) {
		t.Errorf("PRAGMA query_only = %v, %v; want 1", rows, err)
	}
	if d := cmp.Diff(before, snapshot()); d != "" {
		t.Errorf("the catalog changed (-before +after):\n%s", d)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "catalog.db") {
			t.Errorf("a file appeared beside the catalog: %s", e.Name())
		}
	}
}

// TestAttachLimitAlone checks the layer under the authorizer: on a mode=ro, query_only
// connection without an authorizer, ATTACH and VACUUM INTO create files (which is why the
// authorizer is there), and SQLITE_LIMIT_ATTACHED = 0 alone stops both.
func TestAttachLimitAlone(t *testing.T) {
	_, dir := readerFixture(t)
	ctx := context.Background()
	open := func() *sql.Conn {
		t.Helper()
		params := url.Values{"mode": {"ro"}, "_query_only": {"1"}}
		db := sql.OpenDB(connector{drv: &sqlite.Driver{}, dsn: dsn(filepath.Join(dir, "catalog.db"), params)})
		t.Cleanup(func() { db.Close() })
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}

	plain := open()
	if _, err := plain.ExecContext(ctx, `ATTACH 'a1.db' AS a1`); err != nil || !exists("a1.db") {
		t.Logf("premise changed: ATTACH on a read-only connection: %v, file created %v", err, exists("a1.db"))
	}

	limited := open()
	if _, err := sqlite.Limit(limited, sqlite3.SQLITE_LIMIT_ATTACHED, 0); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`ATTACH 'a2.db' AS a2`, `VACUUM INTO 'v2.db'`} {
		if _, err := limited.ExecContext(ctx, q); err == nil {
			t.Errorf("%s with SQLITE_LIMIT_ATTACHED = 0: no error", q)
		}
	}
	for _, f := range []string{"a2.db", "v2.db"} {
		if exists(f) {
			t.Errorf("%s created under SQLITE_LIMIT_ATTACHED = 0", f)
		}
	}
}

func TestReaderOneStatement(t *testing.T) {
	r, _ := readerFixture(t)
	ctx := context.Background()
	for _, tc := range []struct{ q, want string }{
		{`SELECT 1; DELETE FROM tasks`, "one statement at a time"},
		{`SELECT 1; SELECT 2`, "one statement at a time"},
		{`   `, "no SQL statement"},
		{`-- nothing`, "no SQL statement"},
		{`(SELECT 1)`, "is not a query"},
		{`SHOW TABLES`, "is not a query"},
	} {
		if _, _, err := r.Query(ctx, tc.q); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.q, err, tc.want)
		}
	}
	for _, q := range []string{`SELECT 1;`, `SELECT 1; -- done`, "SELECT ';' ;\n/* end */ ;", `SELECT "a;" FROM (SELECT 1 AS "a;")`} {
		if _, _, err := r.Query(ctx, q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	_, rows, err := r.Query(ctx, `SELECT count(*) FROM tasks`)
	if err != nil || rows[0][0] != int64(3) {
		t.Errorf("tasks after the refused statements: %v, %v", rows, err)
	}
}

func TestReaderWhileWriting(t *testing.T) {
	// A reader opened while a driver has the catalog open sees its commits.
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if err := c.PutTasks(ctx, []Task{{JobID: "j", Status: StatusPending}}); err != nil {
		t.Fatal(err)
	}
	_, rows, err := r.Query(ctx, `SELECT count(*) FROM tasks`)
	if err != nil || rows[0][0] != int64(1) {
		t.Errorf("count = %v, %v; want 1", rows, err)
	}
}

func TestOpenReaderMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	if _, err := OpenReader(path); err == nil || !strings.Contains(err.Error(), "no catalog at") {
		t.Errorf("OpenReader of a missing file: err = %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReader created %s", path)
	}
}
