package catalog

import (
	"context"
	"database/sql"
	"fmt"
)

// The catalog's tables. Every time is UTC text 'YYYY-MM-DD HH:MM:SS.ffffff', which SQLite's
// date functions (datetime, julianday, strftime, unixepoch) read as it is; an unknown time is
// NULL. JSON columns hold JSON text, for json_extract and friends. Optional text that is empty
// is stored as NULL, so `WHERE exception IS NOT NULL` finds the failed tasks.
//
// jobs: one row per run of a .mf file.
//
//	job_id            TEXT PRIMARY KEY  unique id of the run
//	name              TEXT              the job's name (`job NAME` in the .mf file)
//	script_path       TEXT              path of the .mf file as given to `mapflow run`
//	script_sha256     TEXT              hex SHA-256 of the .mf file's text
//	script_text       TEXT              the .mf file's text as run
//	git_commit        TEXT              commit of the git work tree holding the script, if any
//	env_name          TEXT              the env the job ran in (`env NAME`)
//	env_kind          TEXT              its backend: local, hadoop, ec2, slurm
//	status            TEXT              Pending, Running, Completed, Failed, Canceled
//	num_tasks         INTEGER           number of tasks (parameter sets)
//	submitted_at      TEXT              when `mapflow run` created the job
//	started_at        TEXT              when the first task was handed to the backend
//	finished_at       TEXT              when the job ended
//	result            TEXT (JSON)       the combiner's output
//	error             TEXT              why the job failed as a whole (not a task's error)
//	driver_pid        INTEGER           process id of the driver running the job
//	driver_host       TEXT              host name of that driver
//	heartbeat         TEXT              the driver's last sign of life
//	cancel_requested  INTEGER           1 once `mapflow cancel` asked the driver to stop
//	backend_state     TEXT (JSON)       what the backend needs to re-attach (application id, ...)
//	cache             TEXT              'reuse': the run reused earlier tasks (`cache`); 'record':
//	                                    it only recorded its tasks' keys (`run --no-cache`); NULL:
//	                                    caching was off
//	cache_parts       TEXT (JSON)       the hash of each part of the job in its tasks' cache keys:
//	                                    {"func": ..., "ship:NAME": ...}; NULL when caching was off
//
// tasks: one row per task, the state of its last attempt; written as Pending when the job is
// planned and replaced as the task runs and ends.
//
//	job_id               TEXT     the job (jobs.job_id)
//	task_index           INTEGER  position of the parameter set, from 0; with job_id the key
//	task_name            TEXT     the task's name (the key combine's `tasks` map uses)
//	params               TEXT     the parameter set, a JSON object
//	status               TEXT     Pending, Running, Completed, Failed, Canceled
//	host                 TEXT     where the last attempt ran
//	attempt              INTEGER  number of the last attempt, from 1 (0 while Pending)
//	start_time           TEXT     when the last attempt started
//	end_time             TEXT     when it ended
//	run_time             REAL     end_time - start_time in seconds, when both are known
//	result               TEXT     the function's result, JSON; NULL unless Completed
//	exception            TEXT     a failure's short class name: KeyError, ExitError, TimeoutError, ...
//	exception_message    TEXT     what went wrong
//	exception_traceback  TEXT     where: the .mf position, or the tail of a program's stderr
//	exit_code            INTEGER  an exec function's exit status
//	cache_key            TEXT     the task's cache key, 64 hex digits; NULL when caching was off
//	cached_from          TEXT     'JOB_ID/TASK_INDEX' of the earlier task whose result a cached
//	                              task reused; NULL otherwise. A cached task did not run in its
//	                              job: attempt 0, no host, start_time or end_time, and run_time
//	                              its source's
//
// cache_index: for each cache key, a task that computed it (Completed, not cached), in the
// runs that recorded keys. A run's keys are added when a later run of the same job part first
// looks one up that the run before it does not hold at the same task index; cache_indexed
// lists the finished runs whose keys are all in.
//
//	cache_key   TEXT     the key (tasks.cache_key)
//	job_id      TEXT     the task's job
//	task_index  INTEGER  the task
//
// task_attempts: the earlier, failed attempts of retried tasks, with the columns of tasks and
// the key (job_id, task_index, attempt). The last attempt is the tasks row.
//
// logs: captured output of exec functions.
//
//	job_id      TEXT     the job
//	task_index  INTEGER  the task
//	attempt     INTEGER  the attempt
//	stream      TEXT     'stdout' or 'stderr'
//	data        BLOB     the bytes captured (possibly only the tail)
//
// The tasks tables are WITHOUT ROWID: their rows live in the primary key's own b-tree, so a
// bulk insert writes one b-tree instead of a table and its key index (see BenchmarkPutTasks).

// migrations are applied in order; migration i brings the schema to version i+1 (PRAGMA
// user_version). Append only: never edit one that has shipped.
var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE jobs (
	job_id           TEXT PRIMARY KEY NOT NULL,
	name             TEXT NOT NULL,
	script_path      TEXT,
	script_sha256    TEXT,
	script_text      TEXT,
	git_commit       TEXT,
	env_name         TEXT,
	env_kind         TEXT,
	status           TEXT NOT NULL,
	num_tasks        INTEGER NOT NULL DEFAULT 0,
	submitted_at     TEXT,
	started_at       TEXT,
	finished_at      TEXT,
	result           TEXT,
	error            TEXT,
	driver_pid       INTEGER,
	driver_host      TEXT,
	heartbeat        TEXT,
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	backend_state    TEXT
);
CREATE INDEX jobs_name_submitted ON jobs (name, submitted_at);

CREATE TABLE tasks (
	job_id              TEXT NOT NULL,
	task_index          INTEGER NOT NULL,
	task_name           TEXT,
	params              TEXT,
	status              TEXT NOT NULL,
	host                TEXT,
	attempt             INTEGER NOT NULL DEFAULT 0,
	start_time          TEXT,
	end_time            TEXT,
	run_time            REAL,
	result              TEXT,
	exception           TEXT,
	exception_message   TEXT,
	exception_traceback TEXT,
	exit_code           INTEGER,
	PRIMARY KEY (job_id, task_index)
) WITHOUT ROWID;

CREATE TABLE task_attempts (
	job_id              TEXT NOT NULL,
	task_index          INTEGER NOT NULL,
	task_name           TEXT,
	params              TEXT,
	status              TEXT NOT NULL,
	host                TEXT,
	attempt             INTEGER NOT NULL,
	start_time          TEXT,
	end_time            TEXT,
	run_time            REAL,
	result              TEXT,
	exception           TEXT,
	exception_message   TEXT,
	exception_traceback TEXT,
	exit_code           INTEGER,
	PRIMARY KEY (job_id, task_index, attempt)
) WITHOUT ROWID;

CREATE TABLE logs (
	job_id     TEXT NOT NULL,
	task_index INTEGER NOT NULL,
	attempt    INTEGER NOT NULL,
	stream     TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
	data       BLOB,
	PRIMARY KEY (job_id, task_index, attempt, stream)
) WITHOUT ROWID;
`,
	// 2: the cache across runs. cache_index is written a whole run at a time, in key order, when
	// a later run first needs it (an index on tasks.cache_key, kept up as rows are written in
	// task order, made a million-task run several times slower); a run without caching adds
	// nothing to it.
	`
ALTER TABLE jobs ADD COLUMN cache TEXT;
ALTER TABLE jobs ADD COLUMN cache_parts TEXT;
ALTER TABLE tasks ADD COLUMN cache_key TEXT;
ALTER TABLE tasks ADD COLUMN cached_from TEXT;
ALTER TABLE task_attempts ADD COLUMN cache_key TEXT;
ALTER TABLE task_attempts ADD COLUMN cached_from TEXT;
CREATE TABLE cache_index (
	cache_key  TEXT PRIMARY KEY NOT NULL,
	job_id     TEXT NOT NULL,
	task_index INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE cache_indexed (
	job_id TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;
`,
}

// SchemaVersion is the catalog schema version this package writes (PRAGMA user_version): the
// number of migrations (a test keeps the two in step).
const SchemaVersion = 2

// migrate brings the schema to SchemaVersion in one transaction. It is called inside the
// write transaction, so concurrent Opens of a new file apply each migration once.
func migrate(ctx context.Context, tx *sql.Tx, path string) error {
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("catalog %s has schema version %d, newer than this mapflow knows (%d): use a newer mapflow, or another catalog (--catalog)",
			path, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	if v < len(migrations) {
		// PRAGMA takes no parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("set schema version: %w", err)
		}
	}
	return nil
}
