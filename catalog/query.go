package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrReadOnly is returned (wrapped) when a statement given to a Reader would write.
var ErrReadOnly = errors.New("catalog is read-only here")

// Reader is a read-only view of the catalog for user SQL (`mapflow sql`): no statement run
// through it can change the catalog or write any other file.
//
// Four locks, each closing what the others leave open: the file is opened with mode=ro and
// query_only; an authorizer on the connection admits only reads (SELECT, reading columns,
// functions but load_extension, recursive CTEs, and PRAGMAs that only report); the connection
// may attach no database (SQLITE_LIMIT_ATTACHED = 0), which also stops VACUUM INTO, whose
// target the authorizer is not asked about; and Query takes one statement that starts as a
// query does. Temporary b-trees are kept in memory, so a large sort writes no temporary file.
type Reader struct {
	db   *sql.DB
	conn *sql.Conn // the one connection, holding the authorizer and the limit

	mu sync.Mutex // one query at a time
	// denied is the first statement-level operation the authorizer refused, for the error
	// message; schemaWrite the first refused write to SQLite's own tables (sqlite_schema,
	// sqlite_stat1), which SQLite asks about before the statement itself (DROP TABLE first
	// asks to DELETE from sqlite_schema), named only when nothing better was.
	denied, schemaWrite atomic.Pointer[string]
}

// OpenReader opens the catalog at path read-only.
func OpenReader(path string) (*Reader, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open catalog: no catalog at %s (no job has run with it yet)", abs)
		}
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	params := url.Values{}
	params.Set("mode", "ro")
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	params.Add("_pragma", "temp_store(MEMORY)")
	params.Set("_query_only", "1")
	if readOnlyFS(abs) {
		params.Set("immutable", "1")
	}

	r := &Reader{}
	// A Driver of our own, so the hook reaches this Reader's connection and no other.
	drv := &sqlite.Driver{}
	if err := registerPercentiles(drv); err != nil {
		return nil, fmt.Errorf("open catalog %s read-only: %w", abs, err)
	}
	drv.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
		a, ok := c.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("sqlite driver has no authorizer (%T)", c)
		}
		return a.RegisterAuthorizer(r.authorize)
	})
	r.db = sql.OpenDB(connector{drv: drv, dsn: dsn(abs, params)})
	r.db.SetMaxOpenConns(1)

	ctx := context.Background()
	if r.conn, err = r.db.Conn(ctx); err != nil {
		r.db.Close()
		return nil, fmt.Errorf("open catalog %s read-only: %w", abs, err)
	}
	if _, err := sqlite.Limit(r.conn, sqlite3.SQLITE_LIMIT_ATTACHED, 0); err != nil {
		r.Close()
		return nil, fmt.Errorf("open catalog %s read-only: limit attached databases: %w", abs, err)
	}
	if n, err := sqlite.Limit(r.conn, sqlite3.SQLITE_LIMIT_ATTACHED, -1); err != nil || n != 0 {
		r.Close()
		return nil, fmt.Errorf("open catalog %s read-only: could not forbid attached databases (limit %d, %v)", abs, n, err)
	}
	// A catalog that a first job is creating at this moment has no tables yet; say so, rather
	// than "no such table".
	var version int
	if err := r.conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		r.Close()
		return nil, fmt.Errorf("open catalog %s read-only: %w", abs, err)
	}
	if version == 0 {
		r.Close()
		return nil, fmt.Errorf("open catalog: %s has no tables yet (the first job is creating them; try again in a moment)", abs)
	}
	return r, nil
}

// connector opens connections with a Driver of our own (sql.Register is process-global).
type connector struct {
	drv *sqlite.Driver
	dsn string
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.drv.Open(c.dsn)
}

func (c connector) Driver() driver.Driver { return c.drv }

// Close closes the reader.
func (r *Reader) Close() error {
	var errs []error
	if r.conn != nil {
		errs = append(errs, r.conn.Close())
	}
	errs = append(errs, r.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close catalog reader: %w", err)
	}
	return nil
}

// queryKeywords are the words a read-only statement may start with.
var queryKeywords = map[string]bool{
	"SELECT": true, "WITH": true, "VALUES": true, "PRAGMA": true, "EXPLAIN": true,
}

// writeKeywords start statements that write or change the connection.
var writeKeywords = map[string]bool{
	"INSERT": true, "REPLACE": true, "UPDATE": true, "DELETE": true, "CREATE": true,
	"DROP": true, "ALTER": true, "ATTACH": true, "DETACH": true, "VACUUM": true,
	"REINDEX": true, "ANALYZE": true, "BEGIN": true, "COMMIT": true, "END": true,
	"ROLLBACK": true, "SAVEPOINT": true, "RELEASE": true,
}

// Query runs one user statement and returns its column names and rows. Values are as the
// driver gives them: int64, float64, string, []byte or nil. A statement that would write is
// refused with an error wrapping ErrReadOnly.
func (r *Reader) Query(ctx context.Context, q string) (cols []string, rows [][]any, err error) {
	err = r.QueryEach(ctx, q, func(c []string) error { cols = c; return nil }, func(row []any) error {
		rows = append(rows, append([]any(nil), row...))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return cols, rows, nil
}

// QueryEach is Query that hands over the rows one at a time as they come, so that a result of
// millions of rows is never held whole: cols once, then row for each row (its slice is reused;
// []byte values are copies). An error from either ends the query with it.
func (r *Reader) QueryEach(ctx context.Context, q string, cols func([]string) error, row func([]any) error) error {
	stmt, rest := splitStatement(q)
	kw := strings.ToUpper(leadingWord(stmt))
	switch {
	case kw == "":
		return errors.New("query: no SQL statement given")
	case writeKeywords[kw]:
		return readOnlyError(statementKind(stmt))
	case !queryKeywords[kw]:
		return fmt.Errorf("query: %q is not a query: a statement must start with SELECT, WITH, VALUES, PRAGMA or EXPLAIN", clip(strings.TrimSpace(stmt), 40))
	case strings.TrimSpace(stripComments(rest)) != "":
		return fmt.Errorf("query: one statement at a time: found %q after the first ';'", clip(strings.TrimSpace(rest), 40))
	}
	return r.query(ctx, stmt, cols, row)
}

// errCallback marks an error of QueryEach's callbacks, which is returned as it is.
var errCallback = errors.New("callback")

type callbackError struct{ err error }

func (e callbackError) Error() string        { return e.err.Error() }
func (e callbackError) Unwrap() error        { return e.err }
func (e callbackError) Is(target error) bool { return target == errCallback }

// query runs stmt under the authorizer, without Query's checks of its text.
func (r *Reader) query(ctx context.Context, stmt string, colsFn func([]string) error, rowFn func([]any) error) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.denied.Store(nil)
	r.schemaWrite.Store(nil)
	defer func() {
		if err == nil {
			return
		}
		d := r.denied.Load()
		if d == nil {
			d = r.schemaWrite.Load()
		}
		if d != nil {
			err = readOnlyError(*d)
			return
		}
		if errors.Is(err, errCallback) {
			err = errors.Unwrap(err)
			return
		}
		err = fmt.Errorf("query: %w", err)
	}()

	rows, err := r.conn.QueryContext(ctx, stmt)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if err := colsFn(cols); err != nil {
		return callbackError{err}
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for rows.Next() {
		for i := range vals {
			vals[i] = nil
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil { // copies []byte values
			return err
		}
		if err := rowFn(vals); err != nil {
			return callbackError{err}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

func readOnlyError(what string) error {
	return fmt.Errorf("%w: %s is not allowed (mapflow sql runs queries only)", ErrReadOnly, what)
}

// authorize is the connection's SQLite authorizer: it admits reads only, and remembers what
// it refused.
func (r *Reader) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	what := refusal(action, arg1, arg2)
	if what == "" {
		return sqlite.AuthorizerOK
	}
	switch action {
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		switch table := strings.ToLower(arg1); {
		case table == "sqlite_master" || table == "sqlite_schema" ||
			table == "sqlite_temp_master" || table == "sqlite_temp_schema":
			what = "changing the schema"
			r.schemaWrite.CompareAndSwap(nil, &what)
			return sqlite.AuthorizerDeny
		case strings.HasPrefix(table, "sqlite_"):
			what = "writing " + table
			r.schemaWrite.CompareAndSwap(nil, &what)
			return sqlite.AuthorizerDeny
		}
	}
	r.denied.CompareAndSwap(nil, &what)
	return sqlite.AuthorizerDeny
}

// refusal names what action would do if it is not a read, or is "" for a read.
func refusal(action sqlite.AuthorizerActionCode, arg1, arg2 string) string {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthRecursive:
		return ""
	case sqlite.AuthFunction: // arg2 is the function's name
		switch strings.ToLower(arg2) {
		case "load_extension", "fts3_tokenizer":
			return "function " + strings.ToLower(arg2) + "()"
		}
		return ""
	case sqlite.AuthPragma: // arg1 is the pragma's name, arg2 its argument
		name := strings.ToLower(arg1)
		if readPragmas[name] || (arg2 == "" && settingPragmas[name]) {
			return ""
		}
		if arg2 != "" {
			return "PRAGMA " + name + "=" + arg2
		}
		return "PRAGMA " + name
	case sqlite.AuthTransaction: // arg1 is BEGIN, COMMIT or ROLLBACK
		return strings.ToUpper(arg1)
	}
	if name, ok := actionNames[action]; ok {
		return name
	}
	return fmt.Sprintf("operation %d", action)
}

// readPragmas only report, whatever their argument (a table, an index, a row count).
var readPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_info": true,
	"index_xinfo": true, "index_list": true, "foreign_key_list": true,
	"foreign_key_check": true, "integrity_check": true, "quick_check": true,
}

// settingPragmas report a setting when given no argument (and change it when given one).
var settingPragmas = map[string]bool{
	"application_id": true, "auto_vacuum": true, "busy_timeout": true, "cache_size": true,
	"collation_list": true, "compile_options": true, "data_version": true,
	"database_list": true, "encoding": true, "foreign_keys": true, "freelist_count": true,
	"function_list": true, "journal_mode": true, "module_list": true, "page_count": true,
	"page_size": true, "pragma_list": true, "query_only": true, "schema_version": true,
	"synchronous": true, "temp_store": true, "user_version": true,
}

var actionNames = map[sqlite.AuthorizerActionCode]string{
	sqlite.AuthCreateIndex:       "CREATE INDEX",
	sqlite.AuthCreateTable:       "CREATE TABLE",
	sqlite.AuthCreateTempIndex:   "CREATE INDEX",
	sqlite.AuthCreateTempTable:   "CREATE TEMP TABLE",
	sqlite.AuthCreateTempTrigger: "CREATE TEMP TRIGGER",
	sqlite.AuthCreateTempView:    "CREATE TEMP VIEW",
	sqlite.AuthCreateTrigger:     "CREATE TRIGGER",
	sqlite.AuthCreateView:        "CREATE VIEW",
	sqlite.AuthDelete:            "DELETE",
	sqlite.AuthDropIndex:         "DROP INDEX",
	sqlite.AuthDropTable:         "DROP TABLE",
	sqlite.AuthDropTempIndex:     "DROP INDEX",
	sqlite.AuthDropTempTable:     "DROP TABLE",
	sqlite.AuthDropTempTrigger:   "DROP TRIGGER",
	sqlite.AuthDropTempView:      "DROP VIEW",
	sqlite.AuthDropTrigger:       "DROP TRIGGER",
	sqlite.AuthDropView:          "DROP VIEW",
	sqlite.AuthInsert:            "INSERT",
	sqlite.AuthUpdate:            "UPDATE",
	sqlite.AuthAttach:            "ATTACH",
	sqlite.AuthDetach:            "DETACH",
	sqlite.AuthAlterTable:        "ALTER TABLE",
	sqlite.AuthReindex:           "REINDEX",
	sqlite.AuthAnalyze:           "ANALYZE",
	sqlite.AuthCreateVTable:      "CREATE VIRTUAL TABLE",
	sqlite.AuthDropVTable:        "DROP VIRTUAL TABLE",
	sqlite.AuthSavepoint:         "SAVEPOINT",
}

// splitStatement splits q after its first statement: at the first ';' outside string
// literals, quoted identifiers and comments.
func splitStatement(q string) (stmt, rest string) {
	for i := 0; i < len(q); {
		switch c := q[i]; c {
		case ';':
			return q[:i], q[i+1:]
		case '\'', '"', '`':
			i = skipQuoted(q, i, c)
		case '[':
			i = skipQuoted(q, i, ']')
		case '-', '/':
			if j := skipComment(q, i); j > i {
				i = j
			} else {
				i++
			}
		default:
			i++
		}
	}
	return q, ""
}

// skipQuoted returns the index after the quoted text starting at q[i], closed by end (doubled
// to escape it), or len(q) when it is not closed.
func skipQuoted(q string, i int, end byte) int {
	for j := i + 1; j < len(q); j++ {
		if q[j] == end {
			if end != ']' && j+1 < len(q) && q[j+1] == end {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// skipComment returns the index after the comment starting at q[i], or i if none does.
func skipComment(q string, i int) int {
	switch {
	case strings.HasPrefix(q[i:], "--"):
		if j := strings.IndexByte(q[i:], '\n'); j >= 0 {
			return i + j + 1
		}
		return len(q)
	case strings.HasPrefix(q[i:], "/*"):
		if j := strings.Index(q[i+2:], "*/"); j >= 0 {
			return i + 2 + j + 2
		}
		return len(q)
	}
	return i
}

// stripComments removes comments and statement separators, leaving what else is in s.
func stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if j := skipComment(s, i); j > i {
			i = j
			continue
		}
		if s[i] != ';' {
			b.WriteByte(s[i])
		}
		i++
	}
	return b.String()
}

// statementKind names a statement by its first words: DELETE, DROP TABLE, CREATE TEMP VIEW.
func statementKind(stmt string) string {
	words := strings.Fields(strings.ToUpper(stripComments(stmt)))
	if len(words) == 0 {
		return ""
	}
	switch words[0] {
	case "CREATE", "DROP", "ALTER":
		n := 2
		if len(words) > 2 {
			switch words[1] {
			case "TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL":
				n = 3
			}
		}
		words = words[:min(n, len(words))]
		for i, w := range words {
			// Keep only the keyword of "DROP TABLE(x)" and the like.
			words[i] = strings.TrimRightFunc(w, func(r rune) bool { return r < 'A' || r > 'Z' })
		}
		return strings.Join(words, " ")
	}
	return leadingWord(strings.ToUpper(stripComments(stmt)))
}

// leadingWord is the first word of stmt after white space and comments.
func leadingWord(stmt string) string {
	s := strings.TrimSpace(stmt)
	for {
		j := skipComment(s, 0)
		if j == 0 {
			break
		}
		s = strings.TrimSpace(s[j:])
	}
	end := 0
	for end < len(s) && (s[end] == '_' || 'a' <= s[end]|0x20 && s[end]|0x20 <= 'z') {
		end++
	}
	if end == 0 && s != "" {
		return s[:1] // punctuation: not a query keyword
	}
	return s[:end]
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
