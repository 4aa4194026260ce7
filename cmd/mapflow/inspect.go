package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
	rt "github.com/mapflow/mapflow/runtime"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status JOB",
		Short: "Show a job's state and its tasks' counts by status",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			counts, err := cat.CountByStatus(cmd.Context(), row.ID)
			if err != nil {
				return err
			}
			w := a.stdout
			fmt.Fprintf(w, "job:       %s (%s)\n", row.ID, row.Name)
			fmt.Fprintf(w, "status:    %s\n", jobStatus(row))
			fmt.Fprintf(w, "env:       %s (%s)\n", row.EnvName, row.EnvKind)
			fmt.Fprintf(w, "script:    %s (sha256 %s)\n", row.ScriptPath, shortHash(row.ScriptSHA256))
			if row.GitCommit != "" {
				fmt.Fprintf(w, "git:       %s\n", row.GitCommit)
			}
			recorded := 0
			for _, n := range counts {
				recorded += n
			}
			if !rt.Status(row.Status).Final() && recorded > row.NumTasks {
				// A running job whose params are streamed knows its count at the end.
				fmt.Fprintf(w, "tasks:     %d so far (%s)\n", recorded, formatCounts(counts))
			} else if !rt.Status(row.Status).Final() && recorded < row.NumTasks && recorded > 0 {
				// A running job writes a task's row when it starts or ends (and Pending rows
				// for at most 10,000 waiting tasks).
				fmt.Fprintf(w, "tasks:     %d (%s, %d not recorded yet)\n", row.NumTasks, formatCounts(counts), row.NumTasks-recorded)
			} else {
				fmt.Fprintf(w, "tasks:     %d (%s)\n", row.NumTasks, formatCounts(counts))
			}
			fmt.Fprintf(w, "submitted: %s\n", formatTime(row.SubmittedAt))
			if !row.StartedAt.IsZero() {
				fmt.Fprintf(w, "started:   %s\n", formatTime(row.StartedAt))
			}
			if !row.FinishedAt.IsZero() {
				fmt.Fprintf(w, "finished:  %s (%ss)\n", formatTime(row.FinishedAt),
					formatSeconds(row.FinishedAt.Sub(row.StartedAt)))
			}
			switch row.Cache {
			case catalog.CacheReuse:
				n, err := cat.CountCached(cmd.Context(), row.ID)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "cache:     on: %s of its tasks reused an earlier run's result\n", rt.Thousands(n))
			case catalog.CacheRecord:
				fmt.Fprintf(w, "cache:     --no-cache: every task ran; their keys were recorded\n")
			}
			if row.Result != nil {
				fmt.Fprintf(w, "result:    %s\n", formatValue(decodeJSON(row.Result)))
			}
			if row.Error != "" {
				fmt.Fprintf(w, "error:     %s\n", row.Error)
			}
			return nil
		}),
	}
}

// jobStatus is the job's status, saying so when its driver is gone.
func jobStatus(j *catalog.Job) string {
	if rt.DriverGone(j) {
		return j.Status + " (driver gone: finish it with mapflow resume " + j.ID + ")"
	}
	return j.Status
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// formatCounts prints counts by status in the order a task moves through them.
func formatCounts(counts map[string]int) string {
	order := []rt.Status{rt.Completed, rt.Failed, rt.Running, rt.Pending, rt.Canceled}
	var parts []string
	for _, s := range order {
		if n := counts[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "none recorded yet"
	}
	return strings.Join(parts, ", ")
}

func (a *app) resultsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "results JOB",
		Short: "Print a job's combined result as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			if !rt.Status(row.Status).Final() {
				return fmt.Errorf("job %s is still %s; wait for it with: mapflow wait %s", row.ID, row.Status, row.ID)
			}
			fmt.Fprintln(a.stdout, formatValue(decodeJSON(row.Result)))
			return nil
		}),
	}
}

func (a *app) mapResultsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "map-results JOB",
		Short: "Print every task's result in params order as a JSON list (null for tasks that did not complete)",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			// Streamed: a million results print without holding them all.
			w := a.stdout
			fmt.Fprint(w, "[")
			next := 0
			err := cat.Tasks(cmd.Context(), row.ID, func(t *catalog.Task) error {
				for ; next < t.Index; next++ {
					fmt.Fprint(w, sep(next), "null")
				}
				v := "null"
				if t.Status == string(rt.Completed) {
					v = formatValue(decodeJSON(t.Result))
				}
				fmt.Fprint(w, sep(next), v)
				next++
				return nil
			})
			for ; next < row.NumTasks; next++ {
				fmt.Fprint(w, sep(next), "null")
			}
			fmt.Fprintln(w, "]")
			return err
		}),
	}
}

func sep(i int) string {
	if i == 0 {
		return ""
	}
	return ", "
}

// metricsCols are the seed's metrics columns, in its order.
var metricsCols = []string{"task_name", "status", "start_time", "run_time", "exception",
	"exception_message", "exception_traceback"}

func (a *app) metricsCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "metrics JOB",
		Short: "Print the per-task table: task_name, status, start_time, run_time, exception, exception_message, exception_traceback",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			// Rows go out as they are read: a job of a million tasks is never held whole.
			w := bufio.NewWriterSize(a.stdout, 64<<10)
			defer w.Flush()
			out, err := newRowWriter(w, format, "")
			if err != nil {
				return err
			}
			if err := out.header(metricsCols); err != nil {
				return err
			}
			vals := make([]any, len(metricsCols))
			err = cat.Tasks(cmd.Context(), row.ID, func(task *catalog.Task) error {
				var runTime any
				if task.CachedFrom != "" {
					runTime = json.Number(formatSeconds(time.Duration(task.RunTime * float64(time.Second))))
				} else if !task.Start.IsZero() && !task.End.IsZero() {
					runTime = json.Number(formatSeconds(task.End.Sub(task.Start)))
				}
				vals[0], vals[1], vals[2], vals[3] = task.Name, task.Status, nullIfEmpty(formatTime(task.Start)), runTime
				vals[4], vals[5], vals[6] = nullIfEmpty(task.Exception), nullIfEmpty(task.Message), nullIfEmpty(task.Traceback)
				return out.row(vals)
			})
			if err != nil {
				return err
			}
			return out.end()
		}),
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, csv or json")
	return cmd
}

// nullIfEmpty is nil for "": an empty cell, null in JSON.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (a *app) jobsCommand() *cobra.Command {
	var limit int
	var format string
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := a.openExistingCatalog()
			if err != nil {
				return err
			}
			defer cat.Close()
			jobs, err := cat.Jobs(cmd.Context(), limit)
			if err != nil {
				return err
			}
			t := &table{cols: []string{"job_id", "name", "env", "status", "tasks", "submitted_at", "wall_time"}}
			for _, j := range jobs {
				wall := ""
				if !j.FinishedAt.IsZero() && !j.StartedAt.IsZero() {
					wall = formatSeconds(j.FinishedAt.Sub(j.StartedAt))
				}
				t.rows = append(t.rows, []string{j.ID, j.Name, j.EnvName, jobStatus(j),
					strconv.Itoa(j.NumTasks), formatTime(j.SubmittedAt), wall})
			}
			return t.write(a.stdout, format)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many jobs to list (0: all)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, csv or json")
	return cmd
}

func (a *app) logsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logs JOB [TASK]",
		Short: "Print the captured stdout and stderr of a job's tasks (TASK: a task name or index)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			if len(args) == 2 {
				index, err := a.taskIndex(cmd.Context(), cat, row, args[1])
				if err != nil {
					return err
				}
				return a.printLogs(cmd.Context(), cat, row, index, false)
			}
			var indexes []int
			err := cat.Tasks(cmd.Context(), row.ID, func(t *catalog.Task) error {
				indexes = append(indexes, t.Index)
				return nil
			})
			if err != nil {
				return err
			}
			for _, i := range indexes {
				if err := a.printLogs(cmd.Context(), cat, row, i, true); err != nil {
					return err
				}
			}
			return nil
		}),
	}
}

// taskIndex resolves a task given by name ("add-2") or index ("2").
func (a *app) taskIndex(ctx context.Context, cat *catalog.Catalog, row *catalog.Job, ref string) (int, error) {
	if row.NumTasks == 0 {
		return 0, usageErr("job %s has no tasks", row.ID)
	}
	if i, err := strconv.Atoi(ref); err == nil && i >= 0 && i < row.NumTasks {
		return i, nil
	}
	found := -1
	example := ""
	err := cat.Tasks(ctx, row.ID, func(t *catalog.Task) error {
		if t.Name == ref {
			found = t.Index
		}
		if example == "" {
			example = t.Name
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if found < 0 {
		return 0, usageErr("job %s has no task %q (task names look like %s; indexes go from 0 to %d)",
			row.ID, ref, example, row.NumTasks-1)
	}
	return found, nil
}

// printLogs prints one task's captured output, every attempt. quiet skips tasks with none.
func (a *app) printLogs(ctx context.Context, cat *catalog.Catalog, row *catalog.Job, index int, quiet bool) error {
	logs, err := cat.Logs(ctx, row.ID, index)
	if err != nil {
		return err
	}
	if len(logs) == 0 {
		if !quiet {
			fmt.Fprintf(a.stderr, "task %d of job %s left no output\n", index, row.ID)
		}
		return nil
	}
	sort.SliceStable(logs, func(i, j int) bool { return logs[i].Attempt < logs[j].Attempt })
	for _, l := range logs {
		fmt.Fprintf(a.stdout, "==> task %d attempt %d %s <==\n", index, l.Attempt, l.Stream)
		a.stdout.Write(l.Data)
		if len(l.Data) > 0 && l.Data[len(l.Data)-1] != '\n' {
			fmt.Fprintln(a.stdout)
		}
	}
	return nil
}

func (a *app) errorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "error JOB",
		Short: "Print why a job or its tasks failed: the job's error and each failed task's exception",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			if row.Error != "" {
				fmt.Fprintf(a.stdout, "job %s: %s\n", row.ID, row.Error)
			}
			n := 0
			err := cat.Tasks(cmd.Context(), row.ID, func(t *catalog.Task) error {
				if t.Status != string(rt.Failed) {
					return nil
				}
				n++
				fmt.Fprintf(a.stdout, "%s (attempt %d on %s): %s: %s\n", t.Name, t.Attempt, t.Host, t.Exception, t.Message)
				if t.Traceback != "" {
					fmt.Fprintf(a.stdout, "%s\n", indent(t.Traceback))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n == 0 && row.Error == "" {
				fmt.Fprintf(a.stdout, "job %s: no errors\n", row.ID)
			}
			// The cluster's own view of the run, when its backend has one to give.
			if view, err := rt.ExplainRemote(cmd.Context(), rt.NewBackend, row); err == nil && view != "" {
				fmt.Fprintf(a.stdout, "%s", view)
			}
			return nil
		}),
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func (a *app) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a running job: its pending tasks become Canceled",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, _ []string, cat *catalog.Catalog, row *catalog.Job) error {
			ctx := cmd.Context()
			if rt.Status(row.Status).Final() {
				fmt.Fprintf(a.stderr, "job %s already ended: %s\n", row.ID, row.Status)
				return nil
			}
			if err := cat.RequestCancel(ctx, row.ID); err != nil {
				return err
			}
			// A live driver sees the request within a heartbeat and cancels; a dead one cannot,
			// so the rows are settled here.
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				var err error
				if row, err = cat.FindJob(ctx, row.ID); err != nil {
					return err
				}
				if rt.Status(row.Status).Final() {
					fmt.Fprintf(a.stdout, "job %s: %s\n", row.ID, row.Status)
					return nil
				}
				if rt.DriverGone(row) || row.Heartbeat.IsZero() {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			// Its remote work goes on without it: stop it first, so that nothing keeps
			// running (or billing) behind a job recorded Canceled.
			if err := rt.StopRemote(ctx, rt.NewBackend, row); err != nil {
				return err
			}
			// And what its local tasks left running.
			if row.EnvKind == "local" {
				rt.KillStray(row.ID)
			}
			n, err := cat.CancelUnfinished(ctx, row.ID, time.Now())
			if err != nil {
				return err
			}
			row.Status = string(rt.Canceled)
			row.FinishedAt = time.Now()
			if err := cat.UpdateJob(ctx, row); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "job %s: Canceled (%d unfinished tasks marked Canceled; its driver was not running)\n", row.ID, n)
			return nil
		}),
	}
}
