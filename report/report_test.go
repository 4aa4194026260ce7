package report

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mapflow/mapflow/catalog"
)

// escapeJob has params that are markup: its tasks f-1 and f-2 fail with a TypeError.
const escapeJob = `job esc
func f(x) = x + 1
params [{x: 1}, {x: "` + scriptParam + `"}, {x: "<b>bold</b>"}]
`

const scriptParam = `</script><script>alert(1)</script>`

// flakyJob runs on three workers; tasks 0, 3 and 6 fail their first attempt, task 7 both.
var flakyJob = map[string]string{
	"job.mf": `job flaky
env local { workers = 3 }
func work(n) = exec("sh", "work.sh", n)
ship "work.sh"
params map(0..8, ({n: #}))
retries 1
`,
	"work.sh": `sleep 0.2
if [ "$1" = 7 ]; then echo "broken for good" >&2; exit 3; fi
if [ "$MAPFLOW_ATTEMPT" = 1 ] && [ $(($1 % 3)) = 0 ]; then echo "flaky: try again" >&2; exit 1; fi
echo "{\"n\": $1}"
`,
}

func TestWriteAddFailure(t *testing.T) {
	cat, job := runJob(t, "../examples/add_failure.mf")
	_, page := writeReport(t, cat, job)

	for _, want := range []string{
		"<title>add_failure · " + job.ID,
		`<span id="job-status" class="badge s-Failed">Failed</span>`,
		job.ScriptSHA256,
		"2 Completed", "1 Failed",
		"partial: 1 of 3 tasks did not complete",
		`<td class="exc">TypeError</td>`,
		"unsupported operand types for &#43;: null and int",
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page has no %q", want)
		}
	}
	_, data := pageData(t, page)
	tl := data.Timeline
	if tl == nil || len(tl.Bars["task"]) != 3 {
		t.Fatalf("timeline %+v, want 3 bars", tl)
	}
	var failed int
	for _, s := range tl.Bars["status"] {
		if tl.Statuses[s] == "Failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed bars, want 1", failed)
	}
	if want := []string{"TypeError: unsupported operand types for +: null and int"}; !cmp.Equal(tl.Errors, want) {
		t.Errorf("errors %q, want %q", tl.Errors, want)
	}
	var tasks timelineTasks
	if err := json.Unmarshal(tl.Tasks, &tasks); err != nil {
		t.Fatal(err)
	}
	if tasks.Prefix == nil || *tasks.Prefix != "add-" || tasks.Names != nil || tasks.Index != nil {
		t.Errorf("tasks %+v: want names as the prefix add-", tasks)
	}
	if got := string(tasks.Params[1]); got != `{"x":null,"y":10}` {
		t.Errorf("params of add-1 %s", got)
	}
}

// TestWriteEscapes: params that are markup are text in the tables, and in the embedded JSON
// cannot end its <script> element.
func TestWriteEscapes(t *testing.T) {
	cat, job := runJob(t, writeJob(t, map[string]string{"job.mf": escapeJob}))
	_, page := writeReport(t, cat, job)

	if n := bytes.Count(page, []byte("</script>")); n != 2 {
		t.Errorf("the page closes %d script elements, want its own 2", n)
	}
	for _, bad := range []string{"<script>alert", "<b>bold"} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("the page has %q unescaped", bad)
		}
	}
	if !bytes.Contains(page, []byte("&lt;b&gt;bold&lt;/b&gt;")) {
		t.Error("the failures table does not show <b>bold</b> escaped")
	}
	raw, data := pageData(t, page)
	if strings.Contains(raw, "<") {
		t.Errorf("the embedded JSON has a <: %s", raw)
	}
	var tasks timelineTasks
	if err := json.Unmarshal(data.Timeline.Tasks, &tasks); err != nil {
		t.Fatal(err)
	}
	var p struct{ X string }
	if err := json.Unmarshal(tasks.Params[1], &p); err != nil || p.X != scriptParam {
		t.Errorf("params of f-1 read back as %q (%v), want x %q", tasks.Params[1], err, scriptParam)
	}
}

func TestWriteRetries(t *testing.T) {
	cat, job := runJob(t, writeJob(t, flakyJob))
	_, page := writeReport(t, cat, job)
	_, data := pageData(t, page)
	tl := data.Timeline
	if n := len(tl.Bars["task"]); n != 13 {
		t.Fatalf("%d bars, want 13 (9 tasks, 4 retried)", n)
	}
	if len(tl.Lanes) != 3 {
		t.Errorf("lanes %q, want 3 (env local { workers = 3 })", tl.Lanes)
	}
	second := 0
	for _, a := range tl.Bars["attempt"] {
		if a == 2 {
			second++
		}
	}
	if second != 4 {
		t.Errorf("%d second attempts, want 4", second)
	}
	if !bytes.Contains(page, []byte("4 earlier attempts")) {
		t.Error("the header does not count the earlier attempts")
	}
}

func at(ms int) time.Time {
	return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
}

func TestPackLanes(t *testing.T) {
	// Host a ran two at a time, b one; a's third attempt starts when its first ends.
	hosts := []string{"b", "a", ""}
	bars := []bar{
		{host: 1, start: 0, end: 10},
		{host: 1, start: 5, end: 20},
		{host: 1, start: 10, end: 15},
		{host: 0, start: 0, end: 30},
		{host: 1, start: 16, end: 18},
		{host: 2, start: 1, end: 2},
	}
	labels := packLanes(bars, hosts)
	if want := []string{"(no host)", "a #1", "a #2", "b"}; !cmp.Equal(labels, want) {
		t.Errorf("lanes %q, want %q", labels, want)
	}
	var lanes []int32
	for _, b := range bars {
		lanes = append(lanes, b.lane)
	}
	if want := []int32{1, 2, 1, 3, 1, 0}; !cmp.Equal(lanes, want) {
		t.Errorf("bars' lanes %v, want %v", lanes, want)
	}
}

// buildTimeline runs a timelineBuilder over tasks and attempts.
func buildTimeline(tasks, attempts []catalog.Task, end time.Time) (*timeline, int) {
	b := newTimelineBuilder(len(tasks), end)
	for i := range tasks {
		b.addTask(&tasks[i])
	}
	for i := range attempts {
		b.addAttempt(&attempts[i])
	}
	return b.finish()
}

func TestTimelineColumns(t *testing.T) {
	long := `{"s":"` + strings.Repeat("é", 2000) + `"}`
	tasks := []catalog.Task{
		{Index: 3, Name: "first", Params: []byte(`{"x":1}`), Status: catalog.StatusCompleted, Host: "h", Attempt: 1, Start: at(100), End: at(200)},
		{Index: 5, Name: "second", Params: []byte(long), Status: catalog.StatusRunning, Host: "h", Attempt: 2, Start: at(300)},
		{Index: 8, Name: "third", Params: []byte(`{}`), Status: catalog.StatusPending},
	}
	attempts := []catalog.Task{
		{Index: 5, Name: "second", Status: catalog.StatusFailed, Host: "h", Attempt: 1, Start: at(150), End: at(250),
			Exception: "WorkerLost", Message: "the worker running it stopped"},
	}
	tl, notStarted := buildTimeline(tasks, attempts, at(1000))
	if notStarted != 1 {
		t.Errorf("%d not started, want 1", notStarted)
	}
	if tl.Tasks.Prefix != nil || !cmp.Equal(tl.Tasks.Names, []string{"first", "second", "third"}) {
		t.Errorf("names %q, prefix %v", tl.Tasks.Names, tl.Tasks.Prefix)
	}
	if !cmp.Equal(tl.Tasks.Index, []int{3, 5, 8}) {
		t.Errorf("index %v", tl.Tasks.Index)
	}
	var clipped string
	if err := json.Unmarshal(tl.Tasks.Params[1], &clipped); err != nil || len(clipped) > maxTipParams+len("…") || !strings.HasSuffix(clipped, "é…") {
		t.Errorf("long params embedded as %.40q… (%v), want a string clipped on a rune", tl.Tasks.Params[1], err)
	}
	want := timelineBars{
		Task:    []int{0, 1, 0},              // rows 0, 1, 1
		Lane:    []int{0, 1, 0},              // the retry overlaps the first task
		Start:   []int64{0, 50_000, 150_000}, // at 100, 150, 300 ms
		Dur:     []int64{100_000, 100_000, 700_000},
		Status:  []int{0, 1, 3}, // Completed, Failed, Running (to the report's end)
		Attempt: []int{1, 1, 2},
		Err:     []int{0, 1, 0},
	}
	if diff := cmp.Diff(want, tl.Bars); diff != "" {
		t.Errorf("bars (-want +got):\n%s", diff)
	}
	if tl.Span != 900_000 || tl.Start != "2026-11-25T12:00:00.1Z" {
		t.Errorf("start %s span %d", tl.Start, tl.Span)
	}
	if want := []string{"WorkerLost: the worker running it stopped"}; !cmp.Equal(tl.Errors, want) {
		t.Errorf("errors %q", tl.Errors)
	}
}

// TestTimelineBudget: however many tasks, the embedded params stay within their budget, and
// past a point they are left out.
func TestTimelineBudget(t *testing.T) {
	params := []byte(`{"text":"` + strings.Repeat("x", 500) + `"}`)
	for _, n := range []int{1000, 100_000, 1_000_000} {
		tasks := make([]catalog.Task, n)
		for i := range tasks {
			tasks[i] = catalog.Task{Index: i, Name: "f-" + strconv.Itoa(i), Params: params}
		}
		tl, _ := buildTimeline(tasks, nil, time.Time{})
		tt := tl.Tasks
		size := 0
		for _, p := range tt.Params {
			size += len(p)
		}
		if size > paramsBudget+n*8 { // a clipped string's quotes and "…"
			t.Errorf("%d tasks: %d bytes of params, over the budget %d", n, size, paramsBudget)
		}
		if (tt.Params == nil) != (paramsBudget/n < minTipParams) {
			t.Errorf("%d tasks: params left out: %v", n, tt.Params == nil)
		}
		if tt.Prefix == nil || *tt.Prefix != "f-" {
			t.Errorf("%d tasks: no prefix", n)
		}
	}
}

func TestInterner(t *testing.T) {
	in := newInterner(60)
	a := in.add("TypeError", "bad operand")
	b := in.add("KeyError", "x")
	if in.add("TypeError", "bad operand") != a || a == b || in.add("", "") != 0 {
		t.Errorf("ids %d %d", a, b)
	}
	// Past the budget, a new message is reduced to its exception's name.
	c := in.add("TypeError", strings.Repeat("long ", 20))
	if in.texts[c-1] != "TypeError" {
		t.Errorf("over budget: %q", in.texts[c-1])
	}
}

func TestHistogram(t *testing.T) {
	var runTimes []time.Duration
	for _, ms := range []int{1, 1, 10, 400} {
		runTimes = append(runTimes, time.Duration(ms)*time.Millisecond)
	}
	h := newHistogram(runTimes, 4)
	if !h.Log {
		t.Error("run times from 1 to 400 ms: want log bins")
	}
	var counts []int
	for _, b := range h.Bins {
		counts = append(counts, b.Count)
	}
	if want := []int{2, 1, 0, 1}; !cmp.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	one := newHistogram(runTimes[:2], 4)
	if len(one.Bins) != 1 || one.Bins[0].Count != 2 {
		t.Errorf("equal run times: bins %+v, want one of 2", one.Bins)
	}
}

func TestKeepSlowest(t *testing.T) {
	var slow []*catalog.Task
	for i, ms := range []int{5, 1, 9, 5, 7, 2} {
		slow = keepSlowest(slow, &catalog.Task{Index: i, Start: at(0), End: at(ms)}, 3)
	}
	var got []int
	for _, t := range slow {
		got = append(got, t.Index)
	}
	if want := []int{2, 4, 0}; !cmp.Equal(got, want) {
		t.Errorf("slowest %v, want %v", got, want)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Microsecond:   "850 µs",
		12500 * time.Microsecond: "12.5 ms",
		3200 * time.Millisecond:  "3.20 s",
		245 * time.Second:        "4m 05s",
		7380 * time.Second:       "2h 03m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestCSPHashes: the page's Content-Security-Policy names the hashes of the script and style
// it inlines, or a browser would refuse to run them.
func TestCSPHashes(t *testing.T) {
	cat, job := runJob(t, "../examples/add_failure.mf")
	_, page := writeReport(t, cat, job)
	m := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindSubmatch(page)
	if m == nil || string(m[1]) != scriptJS {
		t.Fatal("the page does not inline report.js as it is")
	}
	meta := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="([^"]*)">`).FindSubmatch(page)
	if meta == nil {
		t.Fatal("the page has no Content-Security-Policy")
	}
	policy := html.UnescapeString(string(meta[1]))
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindSubmatch(page)
	for _, want := range []string{"default-src 'none'", "script-src " + cspHash(string(m[1])),
		"style-src " + cspHash(string(style[1]))} {
		if !strings.Contains(policy, want) {
			t.Errorf("the policy %q lacks %q", policy, want)
		}
	}
}

// TestWriteRunningJob: a job still running, written into the catalog by hand: a task whose
// worker was lost and that runs again elsewhere, a task not started yet. The running attempt's
// bar ends when the report is made, and the lost one is a bar of its own.
func TestWriteRunningJob(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	began := time.Now().Add(-time.Minute).UTC()
	job := &catalog.Job{ID: "live-1", Name: "live", Status: catalog.StatusRunning, NumTasks: 2,
		SubmittedAt: began, StartedAt: began, EnvName: "ec2", EnvKind: "ec2"}
	if err := cat.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	err = cat.PutTasks(ctx, []catalog.Task{
		{JobID: job.ID, Index: 0, Name: "f-0", Params: []byte(`{"n":0}`), Status: catalog.StatusRunning,
			Host: "ip-10-0-0-2", Attempt: 2, Start: began.Add(20 * time.Second)},
		{JobID: job.ID, Index: 1, Name: "f-1", Params: []byte(`{"n":1}`), Status: catalog.StatusPending},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = cat.PutAttempts(ctx, []catalog.Task{
		{JobID: job.ID, Index: 0, Name: "f-0", Params: []byte(`{"n":0}`), Status: catalog.StatusFailed,
			Host: "ip-10-0-0-1", Attempt: 1, Start: began, End: began.Add(15 * time.Second),
			Exception: "WorkerLost", Message: "host ip-10-0-0-1 stopped answering"},
	})
	if err != nil {
		t.Fatal(err)
	}
	row, err := cat.FindJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, page := writeReport(t, cat, row)
	for _, want := range []string{"1 task has not started", "1 earlier attempts", "s so far",
		`class="badge s-Running"`, "No task has finished."} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page has no %q", want)
		}
	}
	_, data := pageData(t, page)
	tl := data.Timeline
	if want := []string{"ip-10-0-0-1", "ip-10-0-0-2"}; !cmp.Equal(tl.Lanes, want) {
		t.Errorf("lanes %q, want %q", tl.Lanes, want)
	}
	if got := tl.Bars["attempt"]; !cmp.Equal(got, []int64{1, 2}) {
		t.Errorf("attempts %v, want 1 then 2", got)
	}
	// The running bar lasts from its start to about now: some 40 s.
	if d := time.Duration(tl.Bars["dur"][1]) * time.Microsecond; d < 39*time.Second || d > 50*time.Second {
		t.Errorf("the running attempt's bar lasts %v, want about 40s", d)
	}
	if want := []string{"WorkerLost: host ip-10-0-0-1 stopped answering"}; !cmp.Equal(tl.Errors, want) {
		t.Errorf("errors %q", tl.Errors)
	}
}

// TestWriteNothingStarted: a job none of whose tasks started has no timeline to draw.
func TestWriteNothingStarted(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	job := &catalog.Job{ID: "idle-1", Name: "idle", Status: catalog.StatusPending, NumTasks: 1, SubmittedAt: time.Now()}
	if err := cat.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := cat.PutTasks(ctx, []catalog.Task{{JobID: job.ID, Index: 0, Name: "f-0", Status: catalog.StatusPending}}); err != nil {
		t.Fatal(err)
	}
	_, page := writeReport(t, cat, job)
	if raw, _ := pageData(t, page); raw != `{"timeline":null}` {
		t.Errorf("data %s, want no timeline", raw)
	}
	if !bytes.Contains(page, []byte("No task has started.")) {
		t.Error("the page does not say that no task has started")
	}
}

// TestWriteSampled: past its limits, the page draws every k-th task and takes the run times
// from a sample, and says so; the counts still cover every task.
func TestWriteSampled(t *testing.T) {
	defer func(a, b int) { maxTimelineTasks, maxRunTimes = a, b }(maxTimelineTasks, maxRunTimes)
	maxTimelineTasks, maxRunTimes = 10, 20
	cat, job := runJob(t, writeJob(t, map[string]string{"job.mf": "job many\nfunc f(x) = x\nparams map(1..50, ({x: #}))\n"}))
	p, err := build(context.Background(), cat, job, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p.NumTasks != 50 || p.Stride != 5 || p.Drawn != 10 || p.RunTimesOf != 50 || p.Histogram == nil || p.Histogram.N != 20 {
		t.Errorf("tasks %d, stride %d, drawn %d, run times of %d, histogram %+v", p.NumTasks, p.Stride, p.Drawn, p.RunTimesOf, p.Histogram)
	}
	if want := []int{0, 5, 10, 15, 20, 25, 30, 35, 40, 45}; !cmp.Equal(p.Timeline.Tasks.Index, want) {
		t.Errorf("drawn tasks %v, want %v", p.Timeline.Tasks.Index, want)
	}
	var out bytes.Buffer
	if err := Write(context.Background(), &out, cat, job); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"the timeline draws every 5th task (10 of 50)", "a uniform sample of the 50 that finished", "50 Completed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}
