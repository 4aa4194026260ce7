// Package history compares the runs of jobs recorded in the catalog: why a task ran again
// although caching was on (Explain), and what changed between two runs (Diff).
package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
)

// Explain says why a task of job ran although caching was on, naming the nearest earlier task
// (the latest with the same params, else with the same name) and each part of the cache key
// that differs from it; or, for a cached task, whose result it reused. The text ends with a
// newline.
func Explain(ctx context.Context, cat *catalog.Catalog, job *catalog.Job, task *catalog.Task) (string, error) {
	e := &explainer{ctx: ctx, cat: cat, job: job, task: task}
	if err := e.explain(); err != nil {
		return "", err
	}
	return e.b.String(), nil
}

type explainer struct {
	ctx  context.Context
	cat  *catalog.Catalog
	job  *catalog.Job
	task *catalog.Task
	b    strings.Builder
}

func (e *explainer) say(format string, args ...any) { fmt.Fprintf(&e.b, format+"\n", args...) }

func (e *explainer) explain() error {
	t, j := e.task, e.job
	who := fmt.Sprintf("%s of job %s", taskName(t), j.ID)
	if t.CachedFrom != "" {
		e.say("%s was cached: it reused the result of %s.", who, e.describeFrom(t.CachedFrom))
		return nil
	}
	switch {
	case t.Status == catalog.StatusPending || t.Status == catalog.StatusRunning ||
		t.Status == catalog.StatusCanceled && t.Attempt == 0:
		e.say("%s has not run (it is %s).", who, t.Status)
		return nil
	case j.Cache == "":
		e.say("%s ran: caching was off for this run (the job file had no cache statement, or cache false, and the run no --cache).", who)
		return nil
	case j.Cache == catalog.CacheRecord:
		e.say("%s ran: the run had --no-cache, so it reused nothing (it recorded its tasks' cache keys for later runs).", who)
		return nil
	case t.CacheKey == "":
		e.say("%s ran: it has no cache key (its params could not be written as JSON), so it never reuses a result.", who)
		return nil
	}
	e.say("%s ran although caching was on:", who)

	// The same key elsewhere: the task was not there, or not Completed, when this run looked.
	var same []*catalog.Task
	err := e.cat.SelectTasks(e.ctx, `cache_key = ? AND job_id <> ?
		AND job_id IN (SELECT job_id FROM jobs WHERE submitted_at <= ?)`, "end_time DESC", 20,
		[]any{t.CacheKey, j.ID, timeText(j.SubmittedAt)}, collect(&same))
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(same, func(s *catalog.Task) bool { return s.Status == catalog.StatusCompleted }); i >= 0 {
		s := same[i]
		if s.End.Before(j.SubmittedAt) {
			e.say("  %s of job %s has the same cache key and completed at %s, before this run started, but the run could not read the cache (see: mapflow status %s).",
				taskName(s), s.JobID, timeText(s.End), j.ID)
			return nil
		}
		e.say("  %s of job %s has the same cache key, but it completed at %s, after this run started (%s) and looked for it: the runs overlapped.",
			taskName(s), s.JobID, timeText(s.End), timeText(j.SubmittedAt))
		return nil
	}
	if len(same) > 0 {
		s := same[0]
		e.say("  %s of job %s has the same cache key, but it %s: only Completed tasks are reused.", taskName(s), s.JobID, failure(s))
		return nil
	}

	// The same key earlier in this run: a run never reuses its own tasks.
	var own []*catalog.Task
	err = e.cat.SelectTasks(e.ctx, "job_id = ? AND cache_key = ? AND task_index < ?", "", 1,
		[]any{j.ID, t.CacheKey, int64(t.Index)}, collect(&own))
	if err != nil {
		return err
	}
	if len(own) > 0 {
		e.say("  %s of this run has the same cache key: a run never reuses its own tasks (both ran).", taskName(own[0]))
		return nil
	}

	near, how, err := e.nearest()
	if err != nil {
		return err
	}
	if near == nil {
		e.say("  no earlier task with these params (%s), and no earlier run of job %s has a task named %s.", clip(string(t.Params)), j.Name, taskName(t))
		return nil
	}
	nearJob, err := e.cat.FindJob(e.ctx, near.JobID)
	if err != nil {
		return err
	}
	e.say("  the nearest earlier task is %s of job %s (%s):", taskName(near), near.JobID, how)
	causes := e.compare(nearJob, near)
	if near.Status != catalog.StatusCompleted {
		causes = append(causes, fmt.Sprintf("it %s: only Completed tasks are reused", failure(near)))
	}
	if nearJob.Cache == "" {
		causes = append(causes, fmt.Sprintf("job %s ran without caching, so its tasks have no cache keys and none can be reused", nearJob.ID))
	}
	if len(causes) == 0 {
		causes = append(causes, "its cache key differs, but neither the function, the shipped files nor the params it takes do as recorded: a number that is an integer in one and a float in the other (1 and 1.0) makes two keys, and so does a shipped file changed while that job ran")
	}
	for _, c := range causes {
		e.say("  - %s", c)
	}
	return nil
}

// nearest finds the latest task, in a job submitted before this one, with the same params or
// else the same name: in a run of a job of the same name first, then in any other job.
func (e *explainer) nearest() (*catalog.Task, string, error) {
	const earlier = ` AND job_id <> ?2 AND job_id IN (SELECT job_id FROM jobs WHERE submitted_at <= ?3 AND (name = ?4) = ?5)`
	const latest = `(SELECT submitted_at FROM jobs WHERE jobs.job_id = tasks.job_id) DESC, task_index`
	for _, c := range []struct {
		where    string
		arg      string
		sameName bool
		how      string
	}{
		{"params = ?1", string(e.task.Params), true, "same params"},
		{"task_name = ?1", e.task.Name, true, "same name, other params"},
		{"params = ?1", string(e.task.Params), false, "same params, another job"},
	} {
		var found []*catalog.Task
		args := []any{c.arg, e.job.ID, timeText(e.job.SubmittedAt), e.job.Name, c.sameName}
		if err := e.cat.SelectTasks(e.ctx, c.where+earlier, latest, 1, args, collect(&found)); err != nil {
			return nil, "", err
		}
		if len(found) > 0 {
			return found[0], c.how, nil
		}
	}
	return nil, "", nil
}

// compare names what differs, in the parts of the cache key, between the task and near.
func (e *explainer) compare(nearJob *catalog.Job, near *catalog.Task) []string {
	var causes []string
	now, was := parts(e.job.CacheParts), parts(nearJob.CacheParts)
	if f, ok := was["format"]; ok && f != now["format"] {
		causes = append(causes, fmt.Sprintf("the cache key's format changed (%s → %s: another mapflow version)", f, now["format"]))
	}
	if len(was) > 0 && was["salt"] != now["salt"] {
		causes = append(causes, fmt.Sprintf("MAPFLOW_CACHE_SALT changed (%s → %s)", orUnset(was["salt"]), orUnset(now["salt"])))
	}
	newFn, oldFn := funcOf(e.job), funcOf(nearJob)
	if was["func"] != now["func"] || len(was) == 0 {
		if c := funcChange(newFn, oldFn); c != "" {
			causes = append(causes, c)
		}
	}
	if len(was) > 0 {
		causes = append(causes, firstOf(shipChanges(was, now))...)
	}
	var names []string
	if newFn != nil {
		names = newFn.Params
	}
	causes = append(causes, paramChanges(names, near.Params, e.task.Params)...)
	return causes
}

// shipChanges names the shipped files that differ between two jobs' cache parts.
func shipChanges(was, now map[string]string) []string {
	var out []string
	for _, k := range unionKeys(was, now) {
		name, ok := strings.CutPrefix(k, "ship:")
		if !ok {
			continue
		}
		a, inOld := was[k]
		b, inNew := now[k]
		switch {
		case !inOld:
			out = append(out, fmt.Sprintf("shipped file %s is new", name))
		case !inNew:
			out = append(out, fmt.Sprintf("shipped file %s is no longer shipped", name))
		case a != b:
			out = append(out, fmt.Sprintf("shipped file %s changed (sha256 %s… → %s…)", name, short(a), short(b)))
		}
	}
	return out
}

// describeFrom names the task "JOB/INDEX" and its run.
func (e *explainer) describeFrom(from string) string {
	i := strings.LastIndexByte(from, '/')
	index, err := strconv.Atoi(from[i+1:])
	if i < 0 || err != nil {
		return from
	}
	src, err := e.cat.Task(e.ctx, from[:i], index)
	if err != nil {
		return fmt.Sprintf("task %d of job %s (no longer in the catalog)", index, from[:i])
	}
	where := ""
	if src.Host != "" {
		where = " on " + src.Host
	}
	return fmt.Sprintf("%s of job %s (it ran %.3fs%s and ended at %s)", taskName(src), src.JobID,
		runTime(src), where, timeText(src.End))
}

// funcChange says where the function's text changed, from was to now, or "" when it did not.
func funcChange(now, was *lang.FuncSyntax) string {
	if now == nil || was == nil {
		return "the function changed"
	}
	if !slices.Equal(now.Params, was.Params) {
		return fmt.Sprintf("the function's parameters changed (line %d): (%s), was (%s)", now.Pos.Line,
			strings.Join(now.Params, ", "), strings.Join(was.Params, ", "))
	}
	n := min(len(now.Body), len(was.Body))
	i := 0
	for i < n && now.Body[i].Value == was.Body[i].Value {
		i++
	}
	if i == len(now.Body) && i == len(was.Body) {
		return ""
	}
	line := now.Pos.Line
	switch {
	case i < len(now.Body):
		line = now.Body[i].Pos.Line
	case len(now.Body) > 0:
		line = now.Body[len(now.Body)-1].Pos.Line
	}
	return fmt.Sprintf("function text changed (line %d): %s, was: %s", line, tokensText(now.Body), tokensText(was.Body))
}

// paramChanges names the params the function takes whose values differ.
func paramChanges(names []string, was, now []byte) []string {
	var a, b map[string]json.RawMessage
	if json.Unmarshal(was, &a) != nil || json.Unmarshal(now, &b) != nil {
		if string(was) != string(now) {
			return []string{fmt.Sprintf("params %s → %s", clip(string(was)), clip(string(now)))}
		}
		return nil
	}
	if len(names) == 0 {
		names = unionKeys(a, b)
	}
	var out []string
	for _, k := range names {
		x, inA := a[k]
		y, inB := b[k]
		switch {
		case !inA && !inB:
		case !inA:
			out = append(out, fmt.Sprintf("param %s (missing) → %s", k, clip(string(y))))
		case !inB:
			out = append(out, fmt.Sprintf("param %s %s → (missing)", k, clip(string(x))))
		case !jsonEqual(x, y):
			out = append(out, fmt.Sprintf("param %s %s → %s", k, clip(string(x)), clip(string(y))))
		}
	}
	return out
}

// unionKeys are the keys of a and b, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// jsonEqual compares two JSON values as the cache key does: 1 and 1.0 are one value, and
// integers are compared exactly, however large.
func jsonEqual(x, y json.RawMessage) bool {
	a, errA := decodeExact(x)
	b, errB := decodeExact(y)
	if errA != nil || errB != nil {
		return string(x) == string(y)
	}
	return reflect.DeepEqual(a, b)
}

// decodeExact decodes JSON with each number as the exact rational it writes.
func decodeExact(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return exactNumbers(v), nil
}

// exactNumber is a number as an exact rational, apart from strings.
type exactNumber string

func exactNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(v)); ok {
			return exactNumber(r.RatString())
		}
	case []any:
		for i := range v {
			v[i] = exactNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = exactNumbers(v[k])
		}
	}
	return v
}

// funcOf is the func statement of the job's stored script, or nil.
func funcOf(j *catalog.Job) *lang.FuncSyntax {
	f, err := lang.Parse(j.ScriptPath, []byte(j.ScriptText))
	if err != nil {
		return nil
	}
	return f.Func()
}

// parts reads a job's cache_parts.
func parts(b []byte) map[string]string {
	m := map[string]string{}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func tokensText(toks []lang.Token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.Value)
	}
	s := b.String()
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

func orUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return clip(strconv.Quote(s))
}

// maxShown bounds a value shown in explain's and diff's lines; maxCauses the shipped files
// listed.
const (
	maxShown  = 200
	maxCauses = 20
)

// clip cuts s to maxShown bytes.
func clip(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return strings.ToValidUTF8(s[:maxShown], "") + fmt.Sprintf("… (%d bytes)", len(s))
}

// firstOf keeps the first maxCauses lines, and says how many more there are.
func firstOf(lines []string) []string {
	if len(lines) <= maxCauses {
		return lines
	}
	return append(lines[:maxCauses:maxCauses], fmt.Sprintf("and %d more shipped files", len(lines)-maxCauses))
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// failure says how a task that is not Completed ended.
func failure(t *catalog.Task) string {
	switch {
	case t.Status == catalog.StatusFailed && t.Exception != "":
		msg := strings.Join(strings.Fields(t.Message), " ")
		if len(msg) > 120 {
			msg = strings.ToValidUTF8(msg[:120], "") + "…"
		}
		return fmt.Sprintf("failed (%s: %s)", t.Exception, msg)
	case t.Status == catalog.StatusFailed:
		return "failed"
	}
	return "is " + t.Status
}

func taskName(t *catalog.Task) string {
	if t.Name != "" {
		return t.Name
	}
	return "task " + strconv.Itoa(t.Index)
}

func runTime(t *catalog.Task) float64 {
	if t.RunTime != 0 {
		return t.RunTime
	}
	if t.Start.IsZero() || t.End.IsZero() {
		return 0
	}
	return t.End.Sub(t.Start).Seconds()
}

func collect(into *[]*catalog.Task) func(*catalog.Task) error {
	*into = (*into)[:0]
	return func(t *catalog.Task) error {
		*into = append(*into, t)
		return nil
	}
}

func first(ts []*catalog.Task) *catalog.Task {
	if len(ts) == 0 {
		return nil
	}
	return ts[0]
}

// timeText is t as the catalog writes times.
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }
