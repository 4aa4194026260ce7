// Package local runs a job's tasks on this machine: a pool of goroutines, each evaluating
// expressions itself, starting a child process for each attempt of an exec task, or keeping
// a warm worker process of its own for python(...) and serve(...) functions.
package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

var _ rt.Backend = (*Backend)(nil)

// Backend is the local backend.
type Backend struct {
	cfg Config
}

// New returns a local backend; a zero Config runs one worker per CPU.
func New(cfg Config) *Backend { return &Backend{cfg: cfg} }

// Run runs the tasks on Workers goroutines through the shared rt.Executor. Shipped files are
// copied from the job file's directory into each attempt's working directory, made under a
// temporary directory that Run removes when it returns.
func (b *Backend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	cfg := b.cfg
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	shipDir := filepath.Dir(job.Filename)
	if abs, err := filepath.Abs(shipDir); err == nil {
		shipDir = abs
	}
	ex := &rt.Executor{Job: job, Host: host, ShipDir: shipDir, JobID: rt.JobID(ctx)}
	ex.UsePython(&cfg.Common)
	// A process a task started in a session of its own (setsid) escapes its process group:
	// it ends with the job at the latest.
	defer rt.KillStray(ex.JobID)
	root, err := os.MkdirTemp("", "mapflow-"+job.Name+"-")
	if err != nil {
		return fmt.Errorf("local: make a work directory: %w", err)
	}
	defer os.RemoveAll(root)
	ex.WorkRoot = root
	defer ex.Close()
	// A warm function whose interpreter or module is broken is one error, before any task.
	if err := ex.Preflight(ctx); err != nil {
		return err
	}

	var wg sync.WaitGroup
	for range cfg.workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot := ex.NewSlot()
			defer slot.Close()
			slot.RunAll(ctx, tasks, r)
		}()
	}
	wg.Wait()
	return nil
}
