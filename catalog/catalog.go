// Package catalog keeps the record of every job and task in one SQLite file.
package catalog

import (
	"context"
	"errors"
	"time"
)

// ErrJobNotFound is returned when no job has the id or name asked for.
var ErrJobNotFound = errors.New("job not found")

var errNotImplemented = errors.New("catalog: not implemented yet")

// Catalog is an open catalog file, for the driver and the CLI. Safe for concurrent use.
type Catalog struct{}

// DefaultPath is where the catalog lives unless --catalog or MAPFLOW_CATALOG says otherwise.
func DefaultPath() (string, error) { return "", errNotImplemented }

// Open opens (creating and migrating as needed) the catalog at path for reading and writing.
func Open(path string) (*Catalog, error) { return nil, errNotImplemented }

// Close closes the catalog.
func (c *Catalog) Close() error { return nil }

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
}

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
}

// Log is a task attempt's captured output stream ("stdout" or "stderr").
type Log struct {
	JobID   string
	Index   int
	Attempt int
	Stream  string
	Data    []byte
}

// CreateJob inserts a new job row.
func (c *Catalog) CreateJob(ctx context.Context, j *Job) error { return errNotImplemented }

// UpdateJob writes every mutable column of j's row.
func (c *Catalog) UpdateJob(ctx context.Context, j *Job) error { return errNotImplemented }

// FindJob returns the job with id ref, or else the latest job named ref; ErrJobNotFound if none.
func (c *Catalog) FindJob(ctx context.Context, ref string) (*Job, error) {
	return nil, errNotImplemented
}

// Jobs lists jobs, newest first; limit <= 0 means all.
func (c *Catalog) Jobs(ctx context.Context, limit int) ([]*Job, error) {
	return nil, errNotImplemented
}

// Heartbeat records that the job's driver is alive and tells whether a cancel was requested.
func (c *Catalog) Heartbeat(ctx context.Context, jobID string, at time.Time) (cancelRequested bool, err error) {
	return false, errNotImplemented
}

// RequestCancel asks the job's driver to cancel it.
func (c *Catalog) RequestCancel(ctx context.Context, jobID string) error { return errNotImplemented }

// PutTasks upserts task rows by (job_id, task_index) in one transaction.
func (c *Catalog) PutTasks(ctx context.Context, rows []Task) error { return errNotImplemented }

// PutAttempts inserts rows for earlier, failed attempts of tasks.
func (c *Catalog) PutAttempts(ctx context.Context, rows []Task) error { return errNotImplemented }

// PutLogs stores captured output, replacing any for the same task, attempt and stream.
func (c *Catalog) PutLogs(ctx context.Context, logs []Log) error { return errNotImplemented }

// Tasks calls fn for each task row of the job in task_index order.
func (c *Catalog) Tasks(ctx context.Context, jobID string, fn func(*Task) error) error {
	return errNotImplemented
}

// Logs returns the captured output of one task, every attempt, in attempt order.
func (c *Catalog) Logs(ctx context.Context, jobID string, index int) ([]Log, error) {
	return nil, errNotImplemented
}

// CountByStatus counts the job's task rows by status.
func (c *Catalog) CountByStatus(ctx context.Context, jobID string) (map[string]int, error) {
	return nil, errNotImplemented
}

// CancelUnfinished marks the job's Pending and Running task rows Canceled, ending them at at.
func (c *Catalog) CancelUnfinished(ctx context.Context, jobID string, at time.Time) (int, error) {
	return 0, errNotImplemented
}
