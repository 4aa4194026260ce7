package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrJobNotFound is returned when no job has the id or name asked for.
var ErrJobNotFound = errors.New("job not found")

// ErrCatalogUnwritable wraps the failures of writes that no retry mends: a full disk, a
// read-only or failing file system.
var ErrCatalogUnwritable = errors.New("the catalog cannot be written")

// Connection settings.
const (
	// busyTimeoutMS is how long SQLite itself waits for a lock before a statement fails busy.
	busyTimeoutMS = 10000
	// maxBusyWait bounds how long a write transaction is retried while the file stays busy.
	maxBusyWait = 2 * time.Minute
	// cacheKiB is each connection's page cache (PRAGMA cache_size takes -KiB). Task rows go
	// in at the end of the tables' B-trees, so a small cache writes them as fast as a large
	// one: 4 MiB ran the million-task job as fast as 16 MiB and took about 60 MB less RSS
	// (SQLite's allocations of 16 KiB pages cost it about twice their size).
	cacheKiB = 4096
	// readConns caps the read pool.
	readConns = 4
)

// pageSize applies to new catalogs only. 16 KiB pages make a bulk write of task rows about a
// tenth faster than SQLite's default 4 KiB (fewer b-tree splits and page headers per row), and
// scans of the tasks table faster too; see bench/.
var pageSize = 16384

// Catalog is an open catalog file, for the driver and the CLI. Safe for concurrent use.
type Catalog struct {
	path string
	w    *sql.DB // the writing connection; its transactions BEGIN IMMEDIATE
	r    *sql.DB // query-only connections

	// wmu serializes this process's writes, and guards what they share.
	wmu   sync.Mutex
	wconn *sql.Conn // w's connection, held; nil after it broke
	// readOnly, when set, says why the file cannot be written: then w is nil, and every
	// write fails with ErrCatalogUnwritable.
	readOnly error
	chunks   [chunksInFlight]*chunk // the task upserts' argument buffers, reused
	// sound says the file passed Check in this process, or was as a mapflow that had
	// checked it left it (its stamp matched at Open): Check need not read it, and Close
	// stamps it.
	sound bool
}

// DefaultPath is where the catalog lives unless --catalog or MAPFLOW_CATALOG says otherwise:
// $MAPFLOW_CATALOG if set, else $XDG_DATA_HOME/mapflow/catalog.db, else
// ~/.local/share/mapflow/catalog.db.
func DefaultPath() (string, error) {
	if p := os.Getenv("MAPFLOW_CATALOG"); p != "" {
		return p, nil
	}
	// The XDG spec says relative values are invalid and to be ignored.
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "mapflow", "catalog.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate the catalog: %w (set MAPFLOW_CATALOG or use --catalog)", err)
	}
	return filepath.Join(home, ".local", "share", "mapflow", "catalog.db"), nil
}

// dsn is the modernc.org/sqlite name of the database file at the absolute path abs: a file:
// URI, so that SQLite's own parameters (mode=ro) apply and no character of the path is taken
// for a parameter.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	return u.String()
}

// Open opens (creating and migrating as needed) the catalog at path for reading and writing.
// Missing parent directories are created (0700), and a new file is readable by its owner only.
func Open(path string) (*Catalog, error) {
	if path == "" {
		return nil, errors.New("open catalog: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	// SQLite would create the file 0644; the catalog holds scripts and results.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if _, serr := os.Stat(abs); serr == nil && (errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)) {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // "read-only file system", "permission denied"
			}
			return openReadOnly(abs, err)
		}
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	f.Close()
	sound := stampMatches(abs) // before SQLite opens the file, which may create its WAL

	common := commonParams()
	wp := cloneValues(common)
	wp.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn(abs, wp))
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)

	rp := cloneValues(common)
	rp.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", dsn(abs, rp))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)

	c := &Catalog{path: abs, w: w, r: r, sound: sound}
	if err := c.init(context.Background()); err != nil {
		c.Close()
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	c.keepReserve()
	return c, nil
}

// commonParams are the connection parameters of every pool.
func commonParams() url.Values {
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	common.Add("_pragma", "synchronous(NORMAL)")
	common.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
	common.Add("_pragma", "temp_store(MEMORY)")
	return common
}

// openReadOnly opens a catalog that cannot be written (why says why) for reading: the
// commands that only read work, and every write fails with ErrCatalogUnwritable.
func openReadOnly(abs string, why error) (*Catalog, error) {
	rp := commonParams()
	rp.Set("mode", "ro")
	if errors.Is(why, syscall.EROFS) {
		rp.Set("immutable", "1")
	}
	rp.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", dsn(abs, rp))
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	return &Catalog{path: abs, r: r, readOnly: why}, nil
}

// readOnlyFS tells whether abs lies on a read-only file system. Nobody can write the file
// then, so SQLite may read it as immutable; it could not read a WAL-mode file there otherwise,
// not being able to create the WAL index beside it.
func readOnlyFS(abs string) bool {
	const wOK = 2
	return errors.Is(syscall.Access(abs, wOK), syscall.EROFS)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// init puts the file in WAL mode and migrates its schema.
func (c *Catalog) init(ctx context.Context) error {
	err := retryBusy(ctx, func() error {
		// page_size takes effect only while the file is empty, so before journal_mode.
		if _, err := c.w.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
			return err
		}
		var mode string
		if err := c.w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
			return err
		}
		if mode != "wal" {
			return fmt.Errorf("journal mode is %q, not wal", mode)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	return c.write(ctx, func(tx *sql.Tx) error { return migrate(ctx, tx, c.path) })
}

// Path is the absolute path of the catalog file.
func (c *Catalog) Path() string { return c.path }

// Close closes the catalog.
func (c *Catalog) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var errs []error
	if c.wconn != nil {
		errs = append(errs, c.wconn.Close())
		c.wconn = nil
	}
	errs = append(errs, c.r.Close())
	if c.w != nil {
		errs = append(errs, c.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close catalog: %w", err)
	}
	if c.sound && c.readOnly == nil {
		c.writeStamp()
	}
	return nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE), retrying the whole transaction
// while the database is busy. fn may run more than once.
func (c *Catalog) write(ctx context.Context, fn func(*sql.Tx) error) error {
	return c.withConn(ctx, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			endTx(conn)
			return fmt.Errorf("begin: %w", err)
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			endTx(conn)
			return err
		}
		if err := tx.Commit(); err != nil {
			endTx(conn)
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// endTx takes the connection out of any transaction a failed BEGIN, statement or COMMIT left
// it in: database/sql's own rollback of a transaction whose context ended runs on the
// connection SQLite was told to interrupt, and may not happen. Without it every later write
// failed with "cannot start a transaction within a transaction".
func endTx(conn *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.ExecContext(ctx, "ROLLBACK") // "no transaction is active" when it is out of one
}

// driverConn is what the writing connection offers below database/sql.
type driverConn interface {
	driver.ConnBeginTx
	driver.ConnPrepareContext
}

// writeRaw is write for the hot path: fn gets the driver's own connection, in a transaction,
// and so skips database/sql's per-argument conversions and allocations.
func (c *Catalog) writeRaw(ctx context.Context, fn func(driverConn) error) error {
	return c.withConn(ctx, func(conn *sql.Conn) error {
		err := conn.Raw(func(dc any) error {
			d, ok := dc.(driverConn)
			if !ok {
				return fmt.Errorf("sqlite driver connection %T lacks BeginTx or PrepareContext", dc)
			}
			tx, err := d.BeginTx(ctx, driver.TxOptions{})
			if err != nil {
				return fmt.Errorf("begin: %w", err)
			}
			if err := fn(d); err != nil {
				tx.Rollback()
				return err
			}
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			return nil
		})
		if err != nil {
			endTx(conn)
		}
		return err
	})
}

// withConn runs fn with the writing connection and c.wmu held, again while the database is
// busy, and gets a new connection if the one held broke.
func (c *Catalog) withConn(ctx context.Context, fn func(*sql.Conn) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.readOnly != nil {
		return fmt.Errorf("%w: %s cannot be written (%w): make it writable, or use another catalog (--catalog PATH or MAPFLOW_CATALOG); reading it works",
			ErrCatalogUnwritable, c.path, c.readOnly)
	}
	err := retryBusy(ctx, func() error {
		if c.wconn == nil {
			conn, err := c.w.Conn(ctx)
			if err != nil {
				return err
			}
			c.wconn = conn
		}
		err := fn(c.wconn)
		if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
			c.wconn.Close()
			c.wconn = nil
		}
		return err
	})
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			c.sound = false // no stamp: the next run checks the file and refuses it
			return fmt.Errorf("%w: %s: %v; %s", ErrDamaged, c.path, err, damagedRemedy)
		case sqlite3.SQLITE_FULL:
			return fmt.Errorf("%w: the disk holding %s is full; free some space, then finish the job with mapflow resume (%w)", ErrCatalogUnwritable, c.path, err)
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			return fmt.Errorf("%w: %s cannot be written (a read-only or failing disk?); fix it, then finish the job with mapflow resume (%w)", ErrCatalogUnwritable, c.path, err)
		}
	}
	return err
}

// retryBusy calls fn until it returns something other than a busy error, waiting with jittered
// exponential backoff in between, for at most maxBusyWait.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(maxBusyWait)
	backoff := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("catalog stayed locked by another process for %v: %w", maxBusyWait, err)
		}
		d := backoff/2 + rand.N(backoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// isBusy tells whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// Job is one row of the jobs table. Zero times are NULL.
type Job struct {
	ID           string
	Name         string
	ScriptPath   string
	ScriptSHA256 string
	ScriptText   string
	GitCommit    string
	EnvName      string
	EnvKind      string
	Status       string // Pending, Running, Completed, Failed, Canceled
	NumTasks     int
	SubmittedAt  time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	Result       []byte // JSON; nil is NULL
	Error        string

	// The driver that runs the job, and its last sign of life; cancel and resume read these.
	DriverPID       int
	DriverHost      string
	Heartbeat       time.Time
	CancelRequested bool
	// BackendState is JSON a backend keeps to re-attach (a YARN application id, instance ids).
	BackendState []byte

	// Cache is CacheReuse when the run reused earlier tasks and recorded its own tasks' cache
	// keys, CacheRecord when it only recorded them (`run --no-cache` of a job file with
	// `cache`), "" when caching was off.
	Cache string
	// CacheParts is JSON naming the hash of each part of the job that enters its tasks'
	// cache keys ({"func": ..., "ship:train.py": ...}), for `mapflow explain`; nil when
	// caching was off.
	CacheParts []byte
}

// The values of jobs.cache.
const (
	CacheReuse  = "reuse"
	CacheRecord = "record"
)

// Task is one row of the tasks table (and, for earlier attempts, of task_attempts).
type Task struct {
	JobID     string
	Index     int
	Name      string
	Params    []byte // JSON
	Status    string
	Host      string
	Attempt   int
	Start     time.Time
	End       time.Time
	Result    []byte // JSON; nil is NULL
	Exception string
	Message   string
	Traceback string
	ExitCode  *int
	// CacheKey is the task's cache key (64 hex digits), when its job recorded them.
	CacheKey string
	// CachedFrom is "JOB_ID/TASK_INDEX" of the task whose result this one reused.
	CachedFrom string
	// RunTime, when not zero, is written as run_time instead of End - Start: a cached task's
	// is its source's.
	RunTime float64
}

// Log is a task attempt's captured output stream ("stdout" or "stderr").
type Log struct {
	JobID   string
	Index   int
	Attempt int
	Stream  string
	Data    []byte
}

// AliveWithin is how recent a running job's heartbeat must be for its driver to be taken for
// alive; a driver beats every second.
const AliveWithin = 5 * time.Second

// DriverGone tells whether an unfinished job's driver is gone: its heartbeat stopped, or it ran
// on this host and its process no longer exists. A finished job has no driver to lose.
func (j *Job) DriverGone() bool {
	switch j.Status {
	case StatusCompleted, StatusFailed, StatusCanceled:
		return false
	}
	if j.Heartbeat.IsZero() || time.Since(j.Heartbeat) > AliveWithin {
		return true
	}
	if host, _ := os.Hostname(); host == j.DriverHost && j.DriverPID > 0 && j.DriverPID != os.Getpid() {
		if err := syscall.Kill(j.DriverPID, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

// Task and job statuses: the vocabulary of the status columns, and of runtime.Status.
const (
	StatusPending   = "Pending"
	StatusRunning   = "Running"
	StatusCompleted = "Completed"
	StatusFailed    = "Failed"
	StatusCanceled  = "Canceled"
)

const jobColumns = `job_id, name, script_path, script_sha256, script_text, git_commit, env_name,
	env_kind, status, num_tasks, submitted_at, started_at, finished_at, result, error,
	driver_pid, driver_host, heartbeat, cancel_requested, backend_state, cache, cache_parts`

// jobArgs are j's values in jobColumns order.
func jobArgs(j *Job) []any {
	cancel := int64(0)
	if j.CancelRequested {
		cancel = 1
	}
	var pid any
	if j.DriverPID != 0 {
		pid = int64(j.DriverPID)
	}
	return []any{
		j.ID, j.Name, nullString(j.ScriptPath), nullString(j.ScriptSHA256),
		nullString(j.ScriptText), nullString(j.GitCommit), nullString(j.EnvName),
		nullString(j.EnvKind), j.Status, int64(j.NumTasks), nullTime(j.SubmittedAt),
		nullTime(j.StartedAt), nullTime(j.FinishedAt), nullJSON(j.Result), nullString(j.Error),
		pid, nullString(j.DriverHost), nullTime(j.Heartbeat), cancel, nullJSON(j.BackendState),
		nullString(j.Cache), nullJSON(j.CacheParts),
	}
}

func checkJob(j *Job) error {
	switch {
	case j.ID == "":
		return errors.New("job has no id")
	case j.Name == "":
		return errors.New("job has no name")
	case j.Status == "":
		return errors.New("job has no status")
	}
	return nil
}

// CreateJob inserts a new job row.
func (c *Catalog) CreateJob(ctx context.Context, j *Job) error {
	if err := checkJob(j); err != nil {
		return fmt.Errorf("create job: %w", err)
	}
	args := jobArgs(j)
	err := c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.ID, err)
	}
	return nil
}

// UpdateJob writes every mutable column of j's row (all but job_id); ErrJobNotFound if there is
// no such row.
func (c *Catalog) UpdateJob(ctx context.Context, j *Job) error {
	if err := checkJob(j); err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	args := jobArgs(j)
	args = append(args[1:], j.ID)
	err := c.writeLast(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET name = ?, script_path = ?,
			script_sha256 = ?, script_text = ?, git_commit = ?, env_name = ?, env_kind = ?,
			status = ?, num_tasks = ?, submitted_at = ?, started_at = ?, finished_at = ?,
			result = ?, error = ?, driver_pid = ?, driver_host = ?, heartbeat = ?,
			cancel_requested = ?, backend_state = ?, cache = ?, cache_parts = ?
			WHERE job_id = ?`, args...)
		if err != nil {
			return err
		}
		return requireRow(res)
	})
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	return nil
}

// requireRow turns an UPDATE that touched no row into ErrJobNotFound.
func requireRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrJobNotFound
	}
	return nil
}

// FindJob returns the job with id ref, or else the latest job named ref, or for NAME~N the
// run of NAME N before its latest; ErrJobNotFound if none.
func (c *Catalog) FindJob(ctx context.Context, ref string) (*Job, error) {
	j, err := c.scanJob(c.r.QueryRowContext(ctx,
		`SELECT `+jobColumns+` FROM jobs WHERE job_id = ?`, ref))
	name, back := ref, int64(0)
	if i := strings.LastIndexByte(ref, '~'); i > 0 {
		if n, perr := strconv.ParseInt(ref[i+1:], 10, 64); perr == nil && n >= 0 && ref[i+1] != '+' {
			name, back = ref[:i], n
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		j, err = c.scanJob(c.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs
			WHERE name = ? ORDER BY submitted_at DESC, rowid DESC LIMIT 1 OFFSET ?`, name, back))
	}
	if errors.Is(err, sql.ErrNoRows) {
		if back > 0 {
			var runs int
			_ = c.r.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE name = ?`, name).Scan(&runs)
			if runs == 0 {
				return nil, fmt.Errorf("%w: no job has the id %q, and no job is named %q (NAME~N is the run N before the latest of the job NAME)", ErrJobNotFound, ref, name)
			}
			return nil, fmt.Errorf("%w: %q asks for the run %d before the latest of job %s, which has %d runs", ErrJobNotFound, ref, back, name, runs)
		}
		return nil, fmt.Errorf("%w: no job has the id or name %q", ErrJobNotFound, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("find job %q: %w", ref, err)
	}
	return j, nil
}

// Jobs lists jobs, newest first; limit <= 0 means all.
func (c *Catalog) Jobs(ctx context.Context, limit int) ([]*Job, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := c.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs
		ORDER BY submitted_at DESC, rowid DESC LIMIT ?`, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var jobs []*Job
	for rows.Next() {
		j, err := c.scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

type scanner interface{ Scan(dest ...any) error }

func (c *Catalog) scanJob(s scanner) (*Job, error) {
	var (
		j                                             Job
		path, sha, text, commit, envName, envKind     sql.NullString
		submitted, started, finished, heartbeat, host sql.NullString
		errText, cache                                sql.NullString
		pid                                           sql.NullInt64
		cancelReq                                     int64
	)
	err := s.Scan(&j.ID, &j.Name, &path, &sha, &text, &commit, &envName, &envKind, &j.Status,
		&j.NumTasks, &submitted, &started, &finished, &j.Result, &errText, &pid, &host,
		&heartbeat, &cancelReq, &j.BackendState, &cache, &j.CacheParts)
	if err != nil {
		return nil, err
	}
	j.ScriptPath, j.ScriptSHA256, j.ScriptText = path.String, sha.String, text.String
	j.GitCommit, j.EnvName, j.EnvKind = commit.String, envName.String, envKind.String
	j.Error, j.DriverHost = errText.String, host.String
	j.DriverPID = int(pid.Int64)
	j.CancelRequested = cancelReq != 0
	j.Cache = cache.String
	for _, t := range []struct {
		dst *time.Time
		src sql.NullString
	}{{&j.SubmittedAt, submitted}, {&j.StartedAt, started}, {&j.FinishedAt, finished}, {&j.Heartbeat, heartbeat}} {
		if *t.dst, err = parseTime(t.src); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
	}
	return &j, nil
}

// Heartbeat records that the job's driver is alive and tells whether a cancel was requested.
func (c *Catalog) Heartbeat(ctx context.Context, jobID string, at time.Time) (cancelRequested bool, err error) {
	err = c.write(ctx, func(tx *sql.Tx) error {
		var cancel int64
		err := tx.QueryRowContext(ctx, `UPDATE jobs SET heartbeat = ? WHERE job_id = ?
			RETURNING cancel_requested`, nullTime(at), jobID).Scan(&cancel)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrJobNotFound
		}
		cancelRequested = cancel != 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("heartbeat of job %s: %w", jobID, err)
	}
	return cancelRequested, nil
}

// SetBackendState records what the job's backend needs to re-attach to its remote work.
func (c *Catalog) SetBackendState(ctx context.Context, jobID string, state []byte) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET backend_state = ? WHERE job_id = ?`, nullJSON(state), jobID)
		if err != nil {
			return err
		}
		return requireRow(res)
	})
	if err != nil {
		return fmt.Errorf("save the backend state of job %s: %w", jobID, err)
	}
	return nil
}

// RequestCancel asks the job's driver to cancel it.
func (c *Catalog) RequestCancel(ctx context.Context, jobID string) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET cancel_requested = 1 WHERE job_id = ?`, jobID)
		if err != nil {
			return err
		}
		return requireRow(res)
	})
	if err != nil {
		return fmt.Errorf("request cancel of job %s: %w", jobID, err)
	}
	return nil
}

// ErrDamaged is the error of Check for a catalog whose file is damaged.
var ErrDamaged = errors.New("the catalog is damaged")

// Check runs SQLite's quick_check over the catalog (about a quarter of a second per million
// tasks), so that a job is not written into a damaged file; not when the file is as a mapflow
// that checked it left it (see checked.go). Its error wraps ErrDamaged and says what to do.
func (c *Catalog) Check(ctx context.Context) error {
	if c.sound {
		return nil
	}
	if err := c.quickCheck(ctx); err != nil {
		return err
	}
	c.sound = true
	return nil
}

// quickCheck runs SQLite's quick_check.
func (c *Catalog) quickCheck(ctx context.Context) error {
	rows, err := c.r.QueryContext(ctx, "PRAGMA quick_check(5)")
	if err != nil {
		return fmt.Errorf("%w: %s: %v; %s", ErrDamaged, c.path, err, damagedRemedy)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("%w: %s: %v; %s", ErrDamaged, c.path, err, damagedRemedy)
		}
		if line != "ok" {
			problems = append(problems, strings.Join(strings.Fields(line), " "))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %s: %v; %s", ErrDamaged, c.path, err, damagedRemedy)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s: %s; %s", ErrDamaged, c.path, strings.Join(problems, "; "), damagedRemedy)
	}
	return nil
}

const damagedRemedy = "mapflow writes no job into it: read what it still holds with mapflow sql, " +
	"and run new jobs into another catalog (--catalog PATH or MAPFLOW_CATALOG)"
