package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"
)

// The task tables' columns, in the order of every statement and argument list below.
const (
	taskColumns = `job_id, task_index, task_name, params, status, host, attempt, start_time,
	end_time, run_time, result, exception, exception_message, exception_traceback, exit_code,
	cache_key, cached_from`
	numTaskColumns = 17

	// rowsPerStmt is the rows of one multi-row upsert: at most 8,500 parameters, well under
	// SQLite's limit of 32,766, and large enough that per-statement costs vanish.
	rowsPerStmt = 500
)

// The two tables PutTasks and PutAttempts write, with their keys.
var (
	tasksTable    = taskTable{name: "tasks", key: "job_id, task_index"}
	attemptsTable = taskTable{name: "task_attempts", key: "job_id, task_index, attempt"}
)

type taskTable struct{ name, key string }

// upsertSQL is the statement writing the rows of ch into t: a multi-row upsert whose columns
// that hold one value in every row of ch are written once, as literals, and the others are
// parameters. A row for an existing key replaces it, except that a missing (NULL) task_name or
// params keeps the stored one, so a status update need not repeat the parameters.
func (t taskTable) upsertSQL(ch *chunk) string {
	var row strings.Builder
	row.WriteByte('(')
	for col := range numTaskColumns {
		if col > 0 {
			row.WriteString(", ")
		}
		if lit := ch.lits[col]; lit != "" {
			row.WriteString(lit)
		} else {
			row.WriteByte('?')
		}
	}
	row.WriteByte(')')
	var b strings.Builder
	b.Grow(ch.rows*(row.Len()+2) + 1024)
	b.WriteString("INSERT INTO ")
	b.WriteString(t.name)
	b.WriteString(" (" + taskColumns + ") VALUES ")
	for i := range ch.rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row.String())
	}
	fmt.Fprintf(&b, ` ON CONFLICT (%s) DO UPDATE SET
		task_name = coalesce(excluded.task_name, task_name),
		params = coalesce(excluded.params, params),
		status = excluded.status, host = excluded.host, attempt = excluded.attempt,
		start_time = excluded.start_time, end_time = excluded.end_time,
		run_time = excluded.run_time, result = excluded.result,
		exception = excluded.exception, exception_message = excluded.exception_message,
		exception_traceback = excluded.exception_traceback, exit_code = excluded.exit_code,
		cache_key = excluded.cache_key, cached_from = excluded.cached_from`, t.key)
	return b.String()
}

// PutTasks upserts task rows by (job_id, task_index) in one transaction. A row replaces the
// stored one, but a row without Name or Params keeps the stored name and parameters. The rows
// must not change during the call.
func (c *Catalog) PutTasks(ctx context.Context, rows []Task) error {
	if err := c.putTasks(ctx, tasksTable, rows); err != nil {
		return fmt.Errorf("put %d task rows: %w", len(rows), err)
	}
	return nil
}

// PutAttempts inserts rows for earlier, failed attempts of tasks. Writing an attempt again
// replaces it.
func (c *Catalog) PutAttempts(ctx context.Context, rows []Task) error {
	if err := c.putTasks(ctx, attemptsTable, rows); err != nil {
		return fmt.Errorf("put %d task attempts: %w", len(rows), err)
	}
	return nil
}

// putTasks writes rows in statements of rowsPerStmt rows. This is the catalog's hot path (a
// job of a million expression tasks is bound by it), so it does three things beyond the plain
// loop: it binds through the driver's own connection, skipping database/sql's conversions; it
// writes the values a whole chunk shares (the job id, the host, the status, the NULLs of a
// task that did not fail: 8 of the 15 columns of a completed expression task) once, as
// literals of the statement, instead of binding them on every row; and it converts each
// chunk's values on another goroutine while SQLite executes the previous chunk.
func (c *Catalog) putTasks(ctx context.Context, t taskTable, rows []Task) error {
	if len(rows) == 0 {
		return nil
	}
	// Check every row before the transaction, so that a bad row writes none.
	for i := range rows {
		if err := checkTask(&rows[i]); err != nil {
			return err
		}
	}
	return c.writeRaw(ctx, func(conn driverConn) error {
		stmts := map[string]driver.StmtExecContext{}
		defer func() {
			for _, st := range stmts {
				st.(driver.Stmt).Close()
			}
		}()
		// c.wmu is held: c.chunks are ours, and idle again once stop has returned.
		ready, free, stop := convertChunks(rows, &c.chunks)
		defer stop()
		for ch := range ready {
			st := stmts[ch.key]
			if st == nil {
				// Prepared per call, within the transaction: driver statements must not
				// outlive the Raw call that made them.
				ds, err := conn.PrepareContext(ctx, t.upsertSQL(ch))
				if err != nil {
					return err
				}
				ex, ok := ds.(driver.StmtExecContext)
				if !ok {
					ds.Close()
					return fmt.Errorf("sqlite driver statement %T lacks ExecContext", ds)
				}
				st = ex
				stmts[ch.key] = st
			}
			if _, err := st.ExecContext(ctx, ch.args); err != nil {
				return err
			}
			free <- ch
		}
		return nil
	})
}

// chunk is the statement arguments of up to rowsPerStmt rows.
type chunk struct {
	rows int
	// lits holds, per column, the SQL literal of the value every row shares, or "" where the
	// rows differ (or the value cannot be a literal); key is their signature with rows.
	lits [numTaskColumns]string
	key  string
	args []driver.NamedValue // the values of the other columns, row after row
	vals []any               // every value, row-major: numTaskColumns per row
	conv argConv
}

// chunksInFlight is how many chunks the converter may have ready or in use: one executing,
// one converted and waiting, one being converted.
const chunksInFlight = 3

// convertChunks converts rows into chunks on a goroutine of its own, reusing the chunks of
// bufs (which it fills on first use). The caller receives them in order from ready and gives
// each back on free once executed; stop ends the converter early and waits for it. The chunks
// refer to the rows' byte slices and share buffers with later chunks, so a chunk is valid only
// until it is given back.
func convertChunks(rows []Task, bufs *[chunksInFlight]*chunk) (ready <-chan *chunk, free chan<- *chunk, stop func()) {
	readyc := make(chan *chunk, chunksInFlight)
	freec := make(chan *chunk, chunksInFlight)
	quit := make(chan struct{})
	done := make(chan struct{})
	for i := range bufs {
		if bufs[i] == nil {
			bufs[i] = &chunk{}
		}
		freec <- bufs[i]
	}
	go func() {
		defer close(done)
		defer close(readyc)
		for off := 0; off < len(rows); off += rowsPerStmt {
			var ch *chunk
			select {
			case ch = <-freec:
			case <-quit:
				return
			}
			ch.fill(rows[off:min(off+rowsPerStmt, len(rows))])
			readyc <- ch // never blocks: at most chunksInFlight chunks exist
		}
	}()
	var once sync.Once
	return readyc, freec, func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

// fill sets ch to the values of rows, which have passed checkTask.
func (ch *chunk) fill(rows []Task) {
	ch.rows = len(rows)
	ch.conv.reset()
	if cap(ch.vals) < len(rows)*numTaskColumns {
		ch.vals = make([]any, rowsPerStmt*numTaskColumns)
	}
	vals := ch.vals[:len(rows)*numTaskColumns]
	for i := range rows {
		ch.conv.setTask(vals[i*numTaskColumns:(i+1)*numTaskColumns], &rows[i])
	}
	// A column is written as a literal when every row holds the same value and that value
	// has a literal form.
	var key strings.Builder
	key.WriteString(strconv.Itoa(len(rows)))
	varying := 0
	for col := range numTaskColumns {
		ch.lits[col] = ""
		first := vals[col]
		lit, ok := sqlLiteral(first)
		ok = ok && (first == nil || sharedColumns[col])
		for i := numTaskColumns + col; ok && i < len(vals); i += numTaskColumns {
			ok = vals[i] == first
		}
		key.WriteByte('|')
		if ok {
			ch.lits[col] = lit
			key.WriteString(lit)
		} else {
			varying++
		}
	}
	ch.key = key.String()
	n := len(rows) * varying
	if cap(ch.args) < n {
		ch.args = make([]driver.NamedValue, rowsPerStmt*numTaskColumns)
		for i := range ch.args {
			ch.args[i].Ordinal = i + 1
		}
	}
	ch.args = ch.args[:n]
	j := 0
	for i, v := range vals {
		if ch.lits[i%numTaskColumns] == "" {
			ch.args[j].Value = v
			j++
		}
	}
	clear(vals) // drop the references to the rows
}

// sharedColumns are the columns whose value a chunk's rows often share (the job id, status,
// host, attempt, exception, exit code): one is written as a literal when all rows hold the same
// value. Any other column is a literal only when NULL in every row: a time that a chunk's rows
// happen to share (cached tasks are recorded at one instant) would make each chunk's statement
// text new, and preparing a 500-row statement costs more than binding its values.
var sharedColumns = [numTaskColumns]bool{0: true, 4: true, 5: true, 6: true, 11: true, 14: true}

// maxLiteral bounds the text written into a statement as a literal.
const maxLiteral = 256

// sqlLiteral is v as an SQL literal with the type a bound v would have, and whether it has
// one: NULL, an integer, or short valid UTF-8 text without NUL, quoted.
func sqlLiteral(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "NULL", true
	case int64:
		return strconv.FormatInt(x, 10), true
	case string:
		if len(x) > maxLiteral || !utf8.ValidString(x) || strings.IndexByte(x, 0) >= 0 {
			return "", false
		}
		return "'" + strings.ReplaceAll(x, "'", "''") + "'", true
	}
	return "", false
}

// checkTask rejects a row the tables would not take.
func checkTask(t *Task) error {
	if t.JobID == "" {
		return fmt.Errorf("task %d has no job id", t.Index)
	}
	if _, ok := statusArg(t.Status); !ok {
		return fmt.Errorf("task %d of job %s: unknown status %q (want Pending, Running, Completed, Failed or Canceled)",
			t.Index, t.JobID, t.Status)
	}
	return nil
}

// argConv builds statement arguments from rows with few allocations: the values are of the
// types the driver binds directly (int64, float64, string, nil); a job id repeated over a
// batch is boxed once; JSON text is the rows' own bytes, not a copy (the driver copies it
// when it binds); and times are formatted into one buffer per chunk.
type argConv struct {
	jobID    string
	jobIDAny any
	times    []byte
	sec      int64    // the Unix second of secText
	secText  [32]byte // its text up to the microseconds: "YYYY-MM-DD HH:MM:SS."
	secLen   int
}

func (a *argConv) reset() {
	a.jobID, a.jobIDAny = "", nil
	if a.times == nil {
		a.times = make([]byte, 0, 2*rowsPerStmt*len("2006-01-02 15:04:05.000000"))
	}
	a.times = a.times[:0]
}

// setTask sets vals (numTaskColumns of them) to t's values in taskColumns order; t has
// passed checkTask.
func (a *argConv) setTask(vals []any, t *Task) {
	status, _ := statusArg(t.Status)
	if t.JobID != a.jobID || a.jobIDAny == nil {
		a.jobID, a.jobIDAny = t.JobID, t.JobID
	}
	var runTime, exitCode any
	if t.RunTime != 0 {
		runTime = t.RunTime
	} else if !t.Start.IsZero() && !t.End.IsZero() {
		runTime = t.End.Sub(t.Start).Seconds()
	}
	if t.ExitCode != nil {
		exitCode = int64(*t.ExitCode)
	}
	_ = vals[numTaskColumns-1]
	vals[0] = a.jobIDAny
	vals[1] = int64(t.Index)
	vals[2] = nullString(t.Name)
	vals[3] = textOf(t.Params)
	vals[4] = status
	vals[5] = nullString(t.Host)
	vals[6] = int64(t.Attempt)
	vals[7] = a.time(t.Start)
	vals[8] = a.time(t.End)
	vals[9] = runTime
	vals[10] = textOf(t.Result)
	vals[11] = nullString(t.Exception)
	vals[12] = nullString(t.Message)
	vals[13] = nullString(t.Traceback)
	vals[14] = exitCode
	vals[15] = nullString(t.CacheKey)
	vals[16] = nullString(t.CachedFrom)
}

// textOf is b as text without copying it (JSON must be TEXT for SQLite's json functions; a
// []byte would be stored as a BLOB), or NULL when b is nil. The string aliases b: it is used
// only while the row it came from is being written, and the driver copies it when it binds.
func textOf(b []byte) any {
	if b == nil {
		return nil
	}
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// statusArg returns the status as a boxed constant (no allocation) and whether it is known.
func statusArg(s string) (any, bool) {
	switch s {
	case StatusPending:
		return StatusPending, true
	case StatusRunning:
		return StatusRunning, true
	case StatusCompleted:
		return StatusCompleted, true
	case StatusFailed:
		return StatusFailed, true
	case StatusCanceled:
		return StatusCanceled, true
	}
	return nil, false
}

// time formats t like nullTime into the chunk's buffer and returns text aliasing it. The
// buffer is overwritten only once the chunk has been executed; should it grow meanwhile, the
// texts made before keep the old array. Most times fall in the second of the time before, so
// the text of that second is kept and only the microseconds are formatted.
func (a *argConv) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	start := len(a.times)
	if sec := t.Unix(); sec == a.sec && a.secLen > 0 {
		a.times = append(a.times, a.secText[:a.secLen]...)
		a.times = appendDigits(a.times, t.Nanosecond()/1000, 6)
	} else {
		a.times = appendTime(a.times, t)
		a.sec, a.secLen = sec, copy(a.secText[:], a.times[start:len(a.times)-6])
	}
	b := a.times[start:]
	return unsafe.String(&b[0], len(b))
}

// nullString is s, or NULL when s is empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullJSON is b as text (JSON must be TEXT for SQLite's json functions; a []byte would be
// stored as a BLOB), or NULL when b is nil.
func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// nullTime is t as catalog time text, or NULL when t is zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return string(appendTime(nil, t))
}

// timeLayout is the catalog's time format, for parsing; SQLite's date functions read it, and
// Go's parser accepts the fraction or its absence.
const timeLayout = "2006-01-02 15:04:05"

// appendTime appends t in UTC as 'YYYY-MM-DD HH:MM:SS.ffffff', without time.Format's layout
// interpretation (this runs twice per task row).
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, "2006-01-02 15:04:05.000000")
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, ' ')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	return appendDigits(b, t.Nanosecond()/1000, 6)
}

// appendDigits appends v, zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var d [8]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:width]...)
}

// parseTime reads a catalog time; NULL is the zero time.
func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(timeLayout, s.String, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s.String, err)
	}
	return t, nil
}

// PutLogs stores captured output, replacing any for the same task, attempt and stream.
func (c *Catalog) PutLogs(ctx context.Context, logs []Log) error {
	if len(logs) == 0 {
		return nil
	}
	for _, l := range logs {
		if l.Stream != "stdout" && l.Stream != "stderr" {
			return fmt.Errorf("put logs: task %d of job %s: stream %q is neither stdout nor stderr", l.Index, l.JobID, l.Stream)
		}
	}
	err := c.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO logs (job_id, task_index, attempt, stream, data)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (job_id, task_index, attempt, stream) DO UPDATE SET data = excluded.data`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, l := range logs {
			data := l.Data
			if data == nil {
				data = []byte{} // an empty capture, not an unknown one
			}
			if _, err := st.ExecContext(ctx, l.JobID, int64(l.Index), int64(l.Attempt), l.Stream, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put logs: %w", err)
	}
	return nil
}

// Tasks calls fn for each task row of the job in task_index order. The rows are streamed: fn
// runs while the query is open, and an error from fn stops it and is returned as it is.
func (c *Catalog) Tasks(ctx context.Context, jobID string, fn func(*Task) error) error {
	return c.eachTask(ctx, "tasks of job "+jobID, `SELECT `+taskColumns+` FROM tasks
		WHERE job_id = ? ORDER BY task_index`, []any{jobID}, fn)
}

// Attempts calls fn for each earlier (failed) attempt of the job's tasks, in task_index then
// attempt order, streamed as Tasks does.
func (c *Catalog) Attempts(ctx context.Context, jobID string, fn func(*Task) error) error {
	return c.eachTask(ctx, "task attempts of job "+jobID, `SELECT `+taskColumns+` FROM task_attempts
		WHERE job_id = ? ORDER BY task_index, attempt`, []any{jobID}, fn)
}

// Task returns one task's row; ErrTaskNotFound when there is none.
func (c *Catalog) Task(ctx context.Context, jobID string, index int) (*Task, error) {
	var found *Task
	err := c.SelectTasks(ctx, "job_id = ? AND task_index = ?", "", 1, []any{jobID, int64(index)}, func(t *Task) error {
		found = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%w: job %s has no task %d", ErrTaskNotFound, jobID, index)
	}
	return found, nil
}

// ErrTaskNotFound is returned for a task that has no row.
var ErrTaskNotFound = errors.New("task not found")

// SelectTasks calls fn for each row of the tasks table that matches where (an SQL condition
// over its columns, with args), in the order of order (SQL; "" for task_index within each
// job), at most limit rows when limit > 0. The rows are streamed, as Tasks does. where and
// order are the caller's own SQL, never a user's text.
func (c *Catalog) SelectTasks(ctx context.Context, where, order string, limit int, args []any, fn func(*Task) error) error {
	if order == "" {
		order = "job_id, task_index"
	}
	q := `SELECT ` + taskColumns + ` FROM tasks WHERE ` + where + ` ORDER BY ` + order
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	return c.eachTask(ctx, "tasks", q, args, fn)
}

// eachTask streams the rows of query to fn; what names them in errors.
func (c *Catalog) eachTask(ctx context.Context, what, query string, args []any, fn func(*Task) error) error {
	rows, err := c.r.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	var sc taskScanner
	for rows.Next() {
		t, err := sc.scan(rows)
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

// taskScanner reads task rows in taskColumns order, reusing its holders.
type taskScanner struct {
	name, host, start, end, exc, msg, tb sql.NullString
	key, from                            sql.NullString
	runTime                              sql.NullFloat64
	exit                                 sql.NullInt64
}

func (s *taskScanner) scan(r scanner) (*Task, error) {
	var t Task
	err := r.Scan(&t.JobID, &t.Index, &s.name, &t.Params, &t.Status, &s.host, &t.Attempt,
		&s.start, &s.end, &s.runTime, &t.Result, &s.exc, &s.msg, &s.tb, &s.exit, &s.key, &s.from)
	if err != nil {
		return nil, err
	}
	t.Name, t.Host = s.name.String, s.host.String
	t.Exception, t.Message, t.Traceback = s.exc.String, s.msg.String, s.tb.String
	t.CacheKey, t.CachedFrom = s.key.String, s.from.String
	if s.from.Valid {
		t.RunTime = s.runTime.Float64
	}
	if s.exit.Valid {
		code := int(s.exit.Int64)
		t.ExitCode = &code
	}
	if t.Start, err = parseTime(s.start); err != nil {
		return nil, fmt.Errorf("task %d: %w", t.Index, err)
	}
	if t.End, err = parseTime(s.end); err != nil {
		return nil, fmt.Errorf("task %d: %w", t.Index, err)
	}
	return &t, nil
}

// CompletedResults calls fn with the index and result (JSON; nil when NULL) of each of the
// job's Completed tasks, in task_index order: what `mapflow resume` keeps. The result slice is
// fn's to keep.
func (c *Catalog) CompletedResults(ctx context.Context, jobID string, fn func(index int, result []byte) error) error {
	rows, err := c.r.QueryContext(ctx, `SELECT task_index, result FROM tasks
		WHERE job_id = ? AND status = 'Completed' ORDER BY task_index`, jobID)
	if err != nil {
		return fmt.Errorf("read results of job %s: %w", jobID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			i      int
			result []byte
		)
		if err := rows.Scan(&i, &result); err != nil {
			return fmt.Errorf("read results of job %s: %w", jobID, err)
		}
		if err := fn(i, result); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read results of job %s: %w", jobID, err)
	}
	return nil
}

// Logs returns the captured output of one task, every attempt, in attempt order (stdout before
// stderr within an attempt).
func (c *Catalog) Logs(ctx context.Context, jobID string, index int) ([]Log, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT attempt, stream, data FROM logs
		WHERE job_id = ? AND task_index = ?
		ORDER BY attempt, stream = 'stderr'`, jobID, int64(index))
	if err != nil {
		return nil, fmt.Errorf("read logs of task %d of job %s: %w", index, jobID, err)
	}
	defer rows.Close()
	var logs []Log
	for rows.Next() {
		l := Log{JobID: jobID, Index: index}
		if err := rows.Scan(&l.Attempt, &l.Stream, &l.Data); err != nil {
			return nil, fmt.Errorf("read logs of task %d of job %s: %w", index, jobID, err)
		}
		logs = append(logs, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read logs of task %d of job %s: %w", index, jobID, err)
	}
	return logs, nil
}

// CountByStatus counts the job's task rows by status.
func (c *Catalog) CountByStatus(ctx context.Context, jobID string) (map[string]int, error) {
	rows, err := c.r.QueryContext(ctx, `SELECT status, count(*) FROM tasks
		WHERE job_id = ? GROUP BY status`, jobID)
	if err != nil {
		return nil, fmt.Errorf("count tasks of job %s: %w", jobID, err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var (
			status string
			n      int
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count tasks of job %s: %w", jobID, err)
		}
		counts[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tasks of job %s: %w", jobID, err)
	}
	return counts, nil
}

// CountCached counts the job's tasks that reused an earlier run's result.
func (c *Catalog) CountCached(ctx context.Context, jobID string) (int, error) {
	var n int
	err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM tasks WHERE job_id = ? AND cached_from IS NOT NULL`, jobID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the cached tasks of job %s: %w", jobID, err)
	}
	return n, nil
}

// sqlSecondsBetween is SQL for the seconds from catalog time a to b, exact to the microsecond
// (julianday's floating point is not): whole seconds from unixepoch plus the fractions' difference.
func sqlSecondsBetween(a, b string) string {
	return fmt.Sprintf("round(unixepoch(%[2]s) - unixepoch(%[1]s) + CAST(substr(%[2]s, 20) AS REAL) - CAST(substr(%[1]s, 20) AS REAL), 6)", a, b)
}

// CancelUnfinished marks the job's Pending and Running task rows Canceled, ending them at at.
// A Running row's run_time becomes the time from its start to at. It returns how many rows
// it changed.
func (c *Catalog) CancelUnfinished(ctx context.Context, jobID string, at time.Time) (int, error) {
	if at.IsZero() {
		return 0, errors.New("cancel unfinished tasks: no end time")
	}
	end := nullTime(at)
	var n int64
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tasks SET status = 'Canceled', end_time = ?1,
			run_time = CASE WHEN start_time IS NOT NULL
				THEN `+sqlSecondsBetween("start_time", "?1")+` END
			WHERE job_id = ?2 AND status IN ('Pending', 'Running')`, end, jobID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cancel unfinished tasks of job %s: %w", jobID, err)
	}
	return int(n), nil
}

// CacheHit is an earlier Completed task whose result a task with the same cache key reuses.
type CacheHit struct {
	// From is "JOB_ID/TASK_INDEX" of the task that computed the result: a hit on a task that
	// was itself cached names that task's source.
	From    string
	RunTime float64 // seconds; the source's
	Result  []byte  // JSON
}

// CacheHits looks up keys (cache keys) in cache_index, among the Completed tasks of jobs other
// than jobID, and returns a hit for each key found, in one statement for all the keys.
func (c *Catalog) CacheHits(ctx context.Context, jobID string, keys []string) (map[string]CacheHit, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	rows, err := c.r.QueryContext(ctx, `SELECT c.cache_key, t.job_id, t.task_index,
		t.run_time, t.result, t.cached_from FROM cache_index c
		JOIN tasks t ON t.job_id = c.job_id AND t.task_index = c.task_index
		WHERE c.cache_key IN (SELECT value FROM json_each(?1)) AND c.job_id <> ?2
			AND t.status = 'Completed' AND t.cache_key = c.cache_key`, string(list), jobID)
	if err != nil {
		return nil, fmt.Errorf("look up cached tasks: %w", err)
	}
	defer rows.Close()
	hits := make(map[string]CacheHit, len(keys))
	for rows.Next() {
		var (
			key, job string
			index    int64
			from     sql.NullString
			runTime  sql.NullFloat64
			result   []byte
		)
		if err := rows.Scan(&key, &job, &index, &runTime, &result, &from); err != nil {
			return nil, fmt.Errorf("look up cached tasks: %w", err)
		}
		hits[key] = CacheHit{From: sourceOf(job, index, from.String), RunTime: runTime.Float64, Result: result}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up cached tasks: %w", err)
	}
	return hits, nil
}

// sourceOf is the cached_from of a task that reuses task index of job: that task's own source
// when it was cached itself (cachedFrom), else the task.
func sourceOf(job string, index int64, cachedFrom string) string {
	if cachedFrom != "" {
		return cachedFrom
	}
	return job + "/" + strconv.FormatInt(index, 10)
}

// IndexCacheRuns adds to cache_index the keys of the runs, other than except, that recorded
// keys with the given cache_parts and are not in it yet: each run's Completed tasks that
// computed their result, in key order, in one transaction, the later runs' replacing the
// earlier's. A run that has ended is then marked indexed; one still going is indexed again
// next time.
func (c *Catalog) IndexCacheRuns(ctx context.Context, parts []byte, except string) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT job_id, status FROM jobs
			WHERE cache_parts = ? AND cache IS NOT NULL AND job_id <> ?
				AND job_id NOT IN (SELECT job_id FROM cache_indexed)
			ORDER BY submitted_at, rowid`, string(parts), except)
		if err != nil {
			return err
		}
		type run struct{ id, status string }
		var runs []run
		for rows.Next() {
			var r run
			if err := rows.Scan(&r.id, &r.status); err != nil {
				rows.Close()
				return err
			}
			runs = append(runs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range runs {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO cache_index (cache_key, job_id, task_index)
				SELECT cache_key, job_id, task_index FROM tasks
				WHERE job_id = ? AND status = 'Completed' AND cache_key IS NOT NULL AND cached_from IS NULL
				ORDER BY cache_key`, r.id); err != nil {
				return err
			}
			switch r.status {
			case StatusCompleted, StatusFailed, StatusCanceled:
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO cache_indexed (job_id) VALUES (?)`, r.id); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index the cache keys of earlier runs: %w", err)
	}
	return nil
}

// UnindexCacheRun marks the job's run as not (wholly) in cache_index: it is running again
// (resume), and its new tasks are added when a later run needs them.
func (c *Catalog) UnindexCacheRun(ctx context.Context, jobID string) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM cache_indexed WHERE job_id = ?`, jobID)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark job %s for indexing: %w", jobID, err)
	}
	return nil
}

// PeerTask is a Completed task with a cache key, as a later run of the same job part reads it.
type PeerTask struct {
	Index int
	Key   string
	Hit   CacheHit
}

// PeerTasks returns the Completed tasks with a cache key of the job, from task index from on in
// task order, at most limit of them, and the index after the last task looked at (for the next
// read; -1 when the job has no more tasks), appended to out[:0]. It reads through the driver's
// own connection: a fully cached rerun reads every task of the run before it.
func (c *Catalog) PeerTasks(ctx context.Context, jobID string, from, limit int, out []PeerTask) ([]PeerTask, int, error) {
	clear(out)
	out = out[:0]
	next, n := -1, 0
	conn, err := c.r.Conn(ctx)
	if err != nil {
		return nil, -1, fmt.Errorf("read the tasks of job %s: %w", jobID, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("sqlite driver connection %T cannot query", dc)
		}
		rows, err := q.QueryContext(ctx, `SELECT task_index, cache_key, run_time, result,
			cached_from FROM tasks WHERE job_id = ?1 AND task_index >= ?2
				AND status = 'Completed' AND cache_key IS NOT NULL
			ORDER BY task_index LIMIT ?3`,
			[]driver.NamedValue{{Ordinal: 1, Value: jobID}, {Ordinal: 2, Value: int64(from)}, {Ordinal: 3, Value: int64(limit)}})
		if err != nil {
			return err
		}
		defer rows.Close()
		vals := make([]driver.Value, 5)
		for {
			if err := rows.Next(vals); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			n++
			index, _ := vals[0].(int64)
			next = int(index) + 1
			t := PeerTask{Index: int(index), Key: text(vals[1])}
			t.Hit.RunTime, _ = vals[2].(float64)
			switch r := vals[3].(type) {
			case string:
				// The driver's own copy, never written to: the result is only read.
				t.Hit.Result = unsafe.Slice(unsafe.StringData(r), len(r))
			case []byte:
				t.Hit.Result = append([]byte(nil), r...)
			}
			t.Hit.From = sourceOf(jobID, index, text(vals[4]))
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, -1, fmt.Errorf("read the tasks of job %s: %w", jobID, err)
	}
	if n < limit {
		next = -1
	}
	return out, next, nil
}

// text is a driver value as text: "" for NULL.
func text(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

// LastCacheRun is the id of the latest job other than except whose run recorded cache keys
// with the given cache_parts (the same function, shipped files and salt), or "" when there is
// none.
func (c *Catalog) LastCacheRun(ctx context.Context, parts []byte, except string) (string, error) {
	var id string
	err := c.r.QueryRowContext(ctx, `SELECT job_id FROM jobs
		WHERE cache_parts = ? AND cache IS NOT NULL AND job_id <> ?
		ORDER BY submitted_at DESC, rowid DESC LIMIT 1`, string(parts), except).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the last run with these cache parts: %w", err)
	}
	return id, nil
}
