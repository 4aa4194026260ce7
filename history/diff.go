package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/mapflow/mapflow/catalog"
)

// Diff bounds.
const (
	// maxDiffScript is the largest script text diffed line by line; larger ones are only
	// said to differ.
	maxDiffScript = 1 << 20
	// diffRows is how many differing tasks Diff shows.
	diffRows = 10
)

// Diff writes what changed from run a to run b: the unified diff of their scripts, their git
// commits, the tasks whose params, status or result differ (counts, then the first rows in
// task order) and the change of the combined result. Tasks are matched by their params: a
// task of b whose params no task of a had is "only in b". It reads each run's tasks once,
// sorted by SQLite, so its memory does not grow with the number of tasks.
func Diff(ctx context.Context, cat *catalog.Catalog, a, b *catalog.Job, w io.Writer) error {
	fmt.Fprintf(w, "a: %s (%s, %s)\n", a.ID, a.Status, timeText(a.SubmittedAt))
	fmt.Fprintf(w, "b: %s (%s, %s)\n", b.ID, b.Status, timeText(b.SubmittedAt))
	writeCommits(w, a, b)
	writeScripts(w, a, b)
	writeShipped(w, a, b)
	if err := diffTasks(ctx, cat, a, b, w); err != nil {
		return err
	}
	ra, rb := resultText(a), resultText(b)
	if ra == rb {
		fmt.Fprintf(w, "result: same, %s\n", ra)
	} else {
		fmt.Fprintf(w, "result: %s → %s\n", ra, rb)
	}
	return nil
}

func writeCommits(w io.Writer, a, b *catalog.Job) {
	switch {
	case a.GitCommit == "" && b.GitCommit == "":
		fmt.Fprintln(w, "git: neither script was in a git work tree")
	case a.GitCommit == b.GitCommit:
		fmt.Fprintf(w, "git: both at commit %s\n", a.GitCommit)
	default:
		fmt.Fprintf(w, "git: commit %s → %s\n", orNone(a.GitCommit), orNone(b.GitCommit))
	}
}

func writeScripts(w io.Writer, a, b *catalog.Job) {
	if a.ScriptText == b.ScriptText {
		fmt.Fprintf(w, "script: same text (%s)\n", a.ScriptPath)
		return
	}
	if len(a.ScriptText) > maxDiffScript || len(b.ScriptText) > maxDiffScript {
		fmt.Fprintf(w, "script: the texts differ (%d and %d bytes: too large to show the lines)\n", len(a.ScriptText), len(b.ScriptText))
		return
	}
	fmt.Fprintln(w, "script:")
	d := udiff.Unified("a/"+label(a), "b/"+label(b), withNewline(a.ScriptText), withNewline(b.ScriptText))
	io.WriteString(w, d)
}

// writeShipped says which shipped files changed, when both runs recorded their hashes (caching
// was on).
func writeShipped(w io.Writer, a, b *catalog.Job) {
	if a.CacheParts == nil || b.CacheParts == nil {
		fmt.Fprintln(w, "shipped files: not known (a run without caching records no hashes of them)")
		return
	}
	changes := shipChanges(parts(a.CacheParts), parts(b.CacheParts))
	if len(changes) == 0 {
		fmt.Fprintln(w, "shipped files: the same")
		return
	}
	fmt.Fprintf(w, "shipped files: %s\n", strings.Join(firstOf(changes), "; "))
}

// label names a run's script in the diff's header: its file's name.
func label(j *catalog.Job) string {
	p := j.ScriptPath
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if p == "" {
		p = j.Name + ".mf"
	}
	return p
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// taskRow is what Diff reads of a task.
type taskRow struct {
	index      int
	name       string
	params     string
	status     string
	result     sql.NullString
	exception  string
	cachedFrom string
	valid      bool
}

// change is a differing task, for the first rows shown.
type change struct {
	order int // the task's index in b, or in a for a task only in a
	text  string
}

// diffTasks merges the two runs' tasks, each sorted by params, and counts and shows the
// differences.
func diffTasks(ctx context.Context, cat *catalog.Catalog, a, b *catalog.Job, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ca, err := openTasks(ctx, cat, a.ID)
	if err != nil {
		return err
	}
	defer ca.close()
	cb, err := openTasks(ctx, cat, b.ID)
	if err != nil {
		return err
	}
	defer cb.close()

	var na, nb, onlyA, onlyB, status, result, same int
	var shown []change
	// add keeps the text of a differing task among the first diffRows in task order, making
	// it (at once, before x and y move on) only then: a million differing tasks format a few
	// lines.
	add := func(order int, text func() string) {
		i, _ := slices.BinarySearchFunc(shown, order, func(x change, o int) int { return x.order - o })
		if i >= diffRows {
			return
		}
		shown = slices.Insert(shown, i, change{order, text()})
		if len(shown) > diffRows {
			shown = shown[:diffRows]
		}
	}
	x, y := ca.next(), cb.next()
	for x.valid || y.valid {
		switch {
		case y.valid && (!x.valid || y.params < x.params):
			nb++
			onlyB++
			add(y.index, func() string { return fmt.Sprintf("%s %s: only in b, %s", y.name, clip(y.params), outcome(y)) })
			y = cb.next()
		case x.valid && (!y.valid || x.params < y.params):
			na++
			onlyA++
			add(x.index, func() string { return fmt.Sprintf("%s %s: only in a, %s", x.name, clip(x.params), outcome(x)) })
			x = ca.next()
		default:
			na++
			nb++
			switch {
			case x.status != y.status:
				status++
				add(y.index, func() string {
					return fmt.Sprintf("%s %s: %s → %s", y.name, clip(y.params), outcome(x), outcome(y))
				})
			case x.result != y.result:
				result++
				add(y.index, func() string {
					return fmt.Sprintf("%s %s: result %s → %s", y.name, clip(y.params), nullText(x.result), nullText(y.result))
				})
			default:
				same++
			}
			x, y = ca.next(), cb.next()
		}
	}
	if err := ca.err(); err != nil {
		return err
	}
	if err := cb.err(); err != nil {
		return err
	}
	fmt.Fprintf(w, "tasks: %d in a, %d in b; by params: %d only in a, %d only in b, %d in both (%d with another status, %d with another result, %d the same)\n",
		na, nb, onlyA, onlyB, na-onlyA, status, result, same)
	if len(shown) > 0 {
		fmt.Fprintf(w, "first tasks that differ (in task order, up to %d):\n", diffRows)
		for _, c := range shown {
			fmt.Fprintf(w, "  %s\n", c.text)
		}
	}
	return nil
}

func outcome(t taskRow) string {
	switch {
	case t.status == catalog.StatusCompleted && t.cachedFrom != "":
		return "Completed " + nullText(t.result) + " (cached)"
	case t.status == catalog.StatusCompleted:
		return "Completed " + nullText(t.result)
	case t.exception != "":
		return t.status + " (" + t.exception + ")"
	}
	return t.status
}

func nullText(s sql.NullString) string {
	if !s.Valid {
		return "null"
	}
	if len(s.String) > 80 {
		return strings.ToValidUTF8(s.String[:80], "") + "…"
	}
	return s.String
}

func resultText(j *catalog.Job) string {
	if j.Result == nil {
		return "none"
	}
	s := string(j.Result)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// taskCursor reads one run's tasks in params order.
type taskCursor struct {
	pull func() (*catalog.Task, error, bool)
	stop func()
	e    error
}

var errStop = errors.New("stop")

func openTasks(ctx context.Context, cat *catalog.Catalog, jobID string) (*taskCursor, error) {
	seq := func(yield func(*catalog.Task, error) bool) {
		err := cat.SelectTasks(ctx, "job_id = ?", "params, task_index", 0, []any{jobID}, func(t *catalog.Task) error {
			if !yield(t, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(nil, err)
		}
	}
	next, stop := iter.Pull2(seq)
	return &taskCursor{pull: next, stop: stop}, nil
}

func (c *taskCursor) next() taskRow {
	if c.e != nil {
		return taskRow{}
	}
	t, err, ok := c.pull()
	if !ok {
		return taskRow{}
	}
	if err != nil {
		c.e = err
		return taskRow{}
	}
	r := taskRow{index: t.Index, name: t.Name, params: string(t.Params), status: t.Status,
		exception: t.Exception, cachedFrom: t.CachedFrom, valid: true}
	if t.Result != nil {
		r.result = sql.NullString{String: string(t.Result), Valid: true}
	}
	return r
}

func (c *taskCursor) err() error { return c.e }

func (c *taskCursor) close() { c.stop() }
