package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mapflow/mapflow/catalog"
)

// Limits that keep a page small whatever the job: what is cut says so on the page, with the
// query that gives all of it.
const (
	maxFailureRows = 500       // rows of the failures table
	maxTraceback   = 8 << 10   // bytes of one traceback shown (its tail)
	maxMessage     = 2 << 10   // bytes of one exception message in the failures table
	maxResult      = 64 << 10  // bytes of the combined result shown
	maxCellParams  = 1 << 10   // bytes of params in a table cell
	slowest        = 10        // rows of the slowest-tasks table
	histogramBins  = 30        // bars of the run-time histogram, at most
	paramsBudget   = 4 << 20   // bytes of params embedded for the timeline's hover, all tasks
	maxTipParams   = 2 << 10   // bytes of one task's params embedded, at most
	minTipParams   = 16        // below this per task, params are left out of the hover
	errorsBudget   = 512 << 10 // bytes of distinct exception texts embedded for the hover
	maxTipError    = 240       // bytes of one exception text in the hover
)

// A job of ten million tasks would need a page of a hundred megabytes, and its builder a few
// gigabytes: past these, the timeline draws every k-th task and the run times are a uniform
// sample, both said on the page. (Variables, for the tests.)
var (
	maxTimelineTasks = 100000  // tasks drawn in the timeline, at most
	maxRunTimes      = 1000000 // run times kept for the quantiles and histogram, at most
)

// Write writes the HTML report of job, read from cat, to w.
func Write(ctx context.Context, w io.Writer, cat *catalog.Catalog, job *catalog.Job) error {
	p, err := build(ctx, cat, job, time.Now())
	if err != nil {
		return fmt.Errorf("report of job %s: %w", job.ID, err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := render(bw, p); err != nil {
		return fmt.Errorf("report of job %s: %w", job.ID, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report of job %s: %w", job.ID, err)
	}
	return nil
}

// page is everything the template shows.
type page struct {
	Job        *catalog.Job
	StatusNote string // when the job's driver is gone
	Counts     []count
	NumTasks   int
	Retried    int // earlier attempts recorded in task_attempts
	Wall       string
	Submitted  string
	Started    string
	Finished   string
	Result     string // the combined result as indented JSON, clipped
	ResultNote string
	Generated  string

	Timeline   *timeline
	NotStarted int // tasks without a start time, not cached: not in the timeline
	Cached     int // tasks that reused an earlier run's result: not in the timeline
	Stride     int // the timeline draws every Stride-th task
	Drawn      int // tasks drawn in the timeline
	RunTimesOf int // when > 0, the run times are a sample of this many
	Histogram  *histogram
	Quantiles  []quantile
	Slowest    []taskRow
	Failures   []taskRow
	FailedMore int // failed tasks beyond the table
	FailedSQL  string
}

// count is the number of tasks in one status.
type count struct {
	Status string
	N      int
}

type quantile struct{ Name, Value string }

// taskRow is a task as a table row shows it.
type taskRow struct {
	Name      string
	Status    string
	Attempt   int
	Host      string
	Start     string
	RunTime   string
	Params    string
	Exception string
	Message   string
	Traceback string
}

// build reads the job's tasks and attempts and keeps what the page shows; now is when the
// report is made (the end of bars still running).
func build(ctx context.Context, cat *catalog.Catalog, job *catalog.Job, now time.Time) (*page, error) {
	p := &page{
		Job:       job,
		Submitted: formatTime(job.SubmittedAt),
		Started:   formatTime(job.StartedAt),
		Finished:  formatTime(job.FinishedAt),
		Generated: formatTime(now),
	}
	if job.DriverGone() {
		p.StatusNote = "driver gone: finish it with mapflow resume " + job.ID
	}
	switch {
	case !job.StartedAt.IsZero() && !job.FinishedAt.IsZero():
		p.Wall = formatDuration(job.FinishedAt.Sub(job.StartedAt))
	case !job.StartedAt.IsZero():
		p.Wall = formatDuration(now.Sub(job.StartedAt)) + " so far"
	}

	counts, err := cat.CountByStatus(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	p.Counts = orderCounts(counts)
	total := 0
	for _, n := range counts {
		total += n
	}

	end := now
	if !job.FinishedAt.IsZero() && job.Status != catalog.StatusRunning {
		end = job.FinishedAt
	}
	p.Stride = max(1, (total+maxTimelineTasks-1)/maxTimelineTasks)
	tb := newTimelineBuilder(min(total, maxTimelineTasks), end)
	// Run times are those of each task's last attempt; past maxRunTimes, a uniform sample
	// (reservoir sampling, with a fixed seed so that a report is made again alike).
	runTimes := make([]time.Duration, 0, min(total, maxRunTimes))
	finished := 0
	rng := rand.New(rand.NewPCG(1, 2))
	var slow []*catalog.Task
	err = cat.Tasks(ctx, job.ID, func(t *catalog.Task) error {
		if p.NumTasks%p.Stride == 0 {
			tb.addTask(t)
			p.Drawn++
		}
		p.NumTasks++
		switch {
		case t.CachedFrom != "":
			p.Cached++
		case t.Start.IsZero():
			p.NotStarted++
		}
		if !t.Start.IsZero() && !t.End.IsZero() {
			d := t.End.Sub(t.Start)
			if finished++; len(runTimes) < maxRunTimes {
				runTimes = append(runTimes, d)
			} else if j := rng.IntN(finished); j < maxRunTimes {
				runTimes[j] = d
			}
			slow = keepSlowest(slow, t, slowest)
		}
		if t.Status == catalog.StatusFailed {
			if len(p.Failures) < maxFailureRows {
				p.Failures = append(p.Failures, newTaskRow(t))
			} else {
				p.FailedMore++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = cat.Attempts(ctx, job.ID, func(t *catalog.Task) error {
		p.Retried++
		tb.addAttempt(t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.Timeline, _ = tb.finish()
	if finished > len(runTimes) {
		p.RunTimesOf = finished
	}

	if job.Result != nil {
		p.Result = formatJSON(job.Result, maxResult)
		if n := p.NumTasks - counts[catalog.StatusCompleted]; n > 0 {
			p.ResultNote = fmt.Sprintf("partial: %d of %d tasks did not complete", n, p.NumTasks)
		}
	}
	slices.Sort(runTimes)
	p.Quantiles = quantiles(runTimes)
	p.Histogram = newHistogram(runTimes, min(histogramBins, int(math.Ceil(2*math.Cbrt(float64(len(runTimes)))))))
	for _, t := range slow {
		p.Slowest = append(p.Slowest, newTaskRow(t))
	}
	if p.FailedMore > 0 {
		p.FailedSQL = fmt.Sprintf(`mapflow sql "SELECT task_name, exception, exception_message FROM tasks WHERE job_id = '%s' AND status = 'Failed'"`, job.ID)
	}
	return p, nil
}

// keepSlowest adds t to slow, the k slowest tasks so far, longest first (of equal run times,
// the first seen).
func keepSlowest(slow []*catalog.Task, t *catalog.Task, k int) []*catalog.Task {
	d := t.End.Sub(t.Start)
	i := len(slow)
	for i > 0 && slow[i-1].End.Sub(slow[i-1].Start) < d {
		i--
	}
	if i >= k {
		return slow
	}
	if len(slow) == k {
		slow = slow[:k-1]
	}
	return slices.Insert(slow, i, t)
}

func newTaskRow(t *catalog.Task) taskRow {
	r := taskRow{
		Name: t.Name, Status: t.Status, Attempt: t.Attempt, Host: t.Host,
		Start:     formatTime(t.Start),
		Params:    clip(string(t.Params), maxCellParams),
		Exception: t.Exception,
		Message:   clip(t.Message, maxMessage),
		Traceback: clipHead(t.Traceback, maxTraceback),
	}
	if !t.Start.IsZero() && !t.End.IsZero() {
		r.RunTime = formatDuration(t.End.Sub(t.Start))
	}
	return r
}

// statusOrder is the order a task moves through its statuses, the order counts are shown in.
var statusOrder = []string{catalog.StatusCompleted, catalog.StatusFailed, catalog.StatusRunning,
	catalog.StatusPending, catalog.StatusCanceled}

func orderCounts(counts map[string]int) []count {
	var out []count
	for _, s := range statusOrder {
		if n := counts[s]; n > 0 {
			out = append(out, count{s, n})
		}
	}
	var rest []string
	for s := range counts {
		if !slices.Contains(statusOrder, s) && counts[s] > 0 {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	for _, s := range rest {
		out = append(out, count{s, counts[s]})
	}
	return out
}

// quantiles are the min, median, p95 and max of sorted run times.
func quantiles(sorted []time.Duration) []quantile {
	if len(sorted) == 0 {
		return nil
	}
	q := func(f float64) string { return formatDuration(sorted[min(len(sorted)-1, int(f*float64(len(sorted))))]) }
	return []quantile{{"min", q(0)}, {"median", q(0.5)}, {"p95", q(0.95)}, {"max", q(1)}}
}

// formatJSON indents a JSON value for reading, clipped to limit bytes.
func formatJSON(b []byte, limit int) string {
	var buf bytes.Buffer
	if len(b) <= limit && json.Indent(&buf, b, "", "  ") == nil {
		return clip(buf.String(), limit)
	}
	return clip(string(b), limit)
}

// formatTime is a catalog time as the page shows it: UTC, to the millisecond.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000") + " UTC"
}

// formatDuration writes d with the unit a reader wants at its size: 850 µs, 12.5 ms, 3.20 s,
// 4m 05s, 2h 03m.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + formatDuration(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// clip cuts s to at most limit bytes, on a rune boundary, marking the cut with "…".
func clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// clipHead keeps the last limit bytes of s (a traceback's end says the most).
func clipHead(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	i := len(s) - limit
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 && j < 200 {
		i += j + 1 // start at a line
	}
	return "…\n" + s[i:]
}
