package report

import (
	"cmp"
	"container/heap"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mapflow/mapflow/catalog"
)

// timeline is the data the page's script draws: the tasks and their attempts in columns, so
// that a job of 100,000 tasks stays a few megabytes (see the package doc). Its JSON form is the
// contract with report.js.
type timeline struct {
	Start    string        `json:"start"`    // the first attempt's start, RFC 3339 UTC
	Span     int64         `json:"span"`     // µs from Start to the last attempt's end
	Lanes    []string      `json:"lanes"`    // lane labels: a host, or "host #slot"
	Statuses []string      `json:"statuses"` // the statuses that bars.status indexes
	Tasks    timelineTasks `json:"tasks"`
	Bars     timelineBars  `json:"bars"`
	Errors   []string      `json:"errors"` // distinct "Exception: message" texts

	// Not embedded: what the template says about the timeline.
	StartText     string  `json:"-"`
	NumBars       int     `json:"-"`
	Legend        []count `json:"-"` // bars by status
	NumHosts      int     `json:"-"`
	Retries       int     `json:"-"` // bars of a second or later attempt
	ParamsOmitted bool    `json:"-"` // too many tasks to embed their params
}

// timelineTasks are the job's tasks in task_index order; a bar names its task by its row here.
type timelineTasks struct {
	// Prefix is set when every name is Prefix + task_index (FUNC-INDEX); Names is set otherwise.
	Prefix *string  `json:"prefix,omitempty"`
	Names  []string `json:"names,omitempty"`
	// Index is each row's task_index, when it is not the row number.
	Index []int `json:"index,omitempty"`
	// Params are each task's params: the JSON object, or a string when clipped.
	Params []json.RawMessage `json:"params,omitempty"`
}

// timelineBars are the attempts, one per bar, in start order.
type timelineBars struct {
	Task    []int   `json:"task"`    // row in tasks, as the difference from the previous bar's
	Lane    []int   `json:"lane"`    // index in lanes
	Start   []int64 `json:"start"`   // µs after the previous bar's start (the first: after Start)
	Dur     []int64 `json:"dur"`     // µs
	Status  []int   `json:"status"`  // index in statuses
	Attempt []int   `json:"attempt"` // the attempt's number, from 1
	Err     []int   `json:"err"`     // 1 + index in errors; 0 for none
}

// bar is one attempt, kept small: a job of a million tasks has a million of them.
type bar struct {
	row, host, status, err, lane int32
	attempt                      int32
	start, end                   int64 // Unix µs
}

// timelineBuilder collects a job's tasks and attempts as the catalog streams them, keeping
// only what the timeline shows, and lays them out.
type timelineBuilder struct {
	end         time.Time // the end of bars still running
	paramsLimit int       // bytes of params kept per task; 0 keeps none

	index  []int
	names  []string
	params []json.RawMessage
	bars   []bar

	hosts      []string
	hostIDs    map[string]int32
	statuses   []string
	statusIDs  map[string]int32
	errs       *interner
	notStarted int
}

// newTimelineBuilder expects about n tasks; end is when bars still running end.
func newTimelineBuilder(n int, end time.Time) *timelineBuilder {
	b := &timelineBuilder{
		end:       end,
		index:     make([]int, 0, n),
		names:     make([]string, 0, n),
		bars:      make([]bar, 0, n),
		hostIDs:   map[string]int32{},
		statusIDs: map[string]int32{},
		errs:      newInterner(errorsBudget),
	}
	if n > 0 {
		b.paramsLimit = min(paramsBudget/n, maxTipParams)
	}
	if b.paramsLimit < minTipParams {
		b.paramsLimit = 0
	} else {
		b.params = make([]json.RawMessage, 0, n)
	}
	for _, s := range []string{catalog.StatusCompleted, catalog.StatusFailed, catalog.StatusCanceled,
		catalog.StatusRunning, catalog.StatusPending} {
		b.id(s, &b.statuses, b.statusIDs)
	}
	return b
}

func (b *timelineBuilder) id(s string, list *[]string, ids map[string]int32) int32 {
	if id, ok := ids[s]; ok {
		return id
	}
	id := int32(len(*list))
	*list = append(*list, s)
	ids[s] = id
	return id
}

// addTask adds a task's row (its last attempt). Tasks come in task_index order.
func (b *timelineBuilder) addTask(t *catalog.Task) {
	row := len(b.index)
	b.index = append(b.index, t.Index)
	b.names = append(b.names, clip(t.Name, 200))
	if b.paramsLimit > 0 {
		b.params = append(b.params, tipParams(t.Params, b.paramsLimit))
	}
	if t.Start.IsZero() {
		b.notStarted++
		return
	}
	b.addBar(t, row)
}

// addAttempt adds an earlier attempt of a task added before.
func (b *timelineBuilder) addAttempt(t *catalog.Task) {
	if t.Start.IsZero() {
		return
	}
	row, ok := slices.BinarySearch(b.index, t.Index)
	if !ok {
		return // an attempt of a task with no row: nothing to name it by
	}
	b.addBar(t, row)
}

func (b *timelineBuilder) addBar(t *catalog.Task, row int) {
	end := t.End
	if end.IsZero() {
		end = t.Start
		if t.Status == catalog.StatusRunning && b.end.After(t.Start) {
			end = b.end
		}
	}
	if end.Before(t.Start) {
		end = t.Start
	}
	b.bars = append(b.bars, bar{
		row:     int32(row),
		host:    b.id(t.Host, &b.hosts, b.hostIDs),
		status:  b.id(t.Status, &b.statuses, b.statusIDs),
		err:     int32(b.errs.add(t.Exception, t.Message)),
		attempt: int32(t.Attempt),
		start:   t.Start.UnixMicro(),
		end:     end.UnixMicro(),
	})
}

// finish lays the bars out in lanes and encodes the columns. It also returns how many tasks
// have no start time, and so no bar.
func (b *timelineBuilder) finish() (*timeline, int) {
	tl := &timeline{Statuses: b.statuses, Errors: b.errs.texts}
	tl.Tasks = b.tasks()
	tl.ParamsOmitted = len(b.index) > 0 && b.paramsLimit == 0
	bars := b.bars
	if len(bars) == 0 {
		return tl, b.notStarted
	}

	tl.Lanes = packLanes(bars, b.hosts)
	tl.NumHosts = len(b.hosts)
	slices.SortStableFunc(bars, func(x, y bar) int { return cmp.Compare(x.start, y.start) })

	t0 := bars[0].start
	start := time.UnixMicro(t0).UTC()
	tl.Start, tl.StartText = start.Format(time.RFC3339Nano), formatTime(start)
	n := len(bars)
	tl.NumBars = n
	cols := &tl.Bars
	cols.Task, cols.Lane, cols.Status, cols.Attempt, cols.Err =
		make([]int, n), make([]int, n), make([]int, n), make([]int, n), make([]int, n)
	cols.Start, cols.Dur = make([]int64, n), make([]int64, n)
	perStatus := make([]int, len(b.statuses))
	prevStart, prevRow := int64(0), 0
	for i, br := range bars {
		start, row := br.start-t0, int(br.row)
		cols.Task[i], prevRow = row-prevRow, row
		cols.Start[i], prevStart = start-prevStart, start
		cols.Dur[i] = br.end - br.start
		cols.Lane[i] = int(br.lane)
		cols.Status[i] = int(br.status)
		cols.Attempt[i] = int(br.attempt)
		cols.Err[i] = int(br.err)
		tl.Span = max(tl.Span, br.end-t0)
		perStatus[br.status]++
		if br.attempt > 1 {
			tl.Retries++
		}
	}
	tl.Span = max(tl.Span, 1)
	counts := map[string]int{}
	for i, c := range perStatus {
		counts[b.statuses[i]] = c
	}
	tl.Legend = orderCounts(counts)
	return tl, b.notStarted
}

// tasks puts the tasks' names, indexes and params in columns.
func (b *timelineBuilder) tasks() timelineTasks {
	var tt timelineTasks
	if len(b.index) == 0 {
		return tt
	}
	if prefix, ok := namePrefix(b.names, b.index); ok {
		tt.Prefix = &prefix
	} else {
		tt.Names = b.names
	}
	for i, index := range b.index {
		if index != i {
			tt.Index = b.index
			break
		}
	}
	tt.Params = b.params
	return tt
}

// namePrefix tells whether every task is named PREFIX + its task_index, and the prefix.
func namePrefix(names []string, index []int) (string, bool) {
	idx := strconv.Itoa(index[0])
	if !strings.HasSuffix(names[0], idx) {
		return "", false
	}
	prefix := strings.TrimSuffix(names[0], idx)
	var buf []byte
	for i, name := range names {
		buf = strconv.AppendInt(append(buf[:0], prefix...), int64(index[i]), 10)
		if name != string(buf) {
			return "", false
		}
	}
	return prefix, true
}

// tipParams is a task's params for the hover: the JSON itself when it is valid and fits in
// limit bytes, else a JSON string of its first bytes. encoding/json re-encodes both, escaping
// <, > and &.
func tipParams(p []byte, limit int) json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("null")
	}
	if len(p) <= limit && json.Valid(p) {
		return json.RawMessage(p)
	}
	b, _ := json.Marshal(clip(string(p), limit))
	return b
}

// interner numbers distinct exception texts from 1, within a byte budget; past it, a new text
// is reduced to its exception's name.
type interner struct {
	ids    map[string]int
	texts  []string
	budget int
}

func newInterner(budget int) *interner { return &interner{ids: map[string]int{}, budget: budget} }

func (in *interner) add(exc, msg string) int {
	if exc == "" && msg == "" {
		return 0
	}
	text := exc
	if msg != "" {
		text = clip(strings.TrimPrefix(exc+": "+msg, ": "), maxTipError)
	}
	if id, ok := in.ids[text]; ok {
		return id
	}
	if len(text) > in.budget {
		text = clip(exc, maxTipError)
		if id, ok := in.ids[text]; ok {
			return id
		}
	}
	in.budget -= len(text)
	in.texts = append(in.texts, text)
	in.ids[text] = len(in.texts)
	return len(in.texts)
}

// packLanes gives each bar a lane: per host, the bars in start order go to the first slot
// that is free by then (a heap of slots by end time), so a host that ran k attempts at once
// gets k lanes. hosts names the bars' host ids; the lanes are in the order of the hosts' names.
// It returns the lanes' labels.
func packLanes(bars []bar, hosts []string) []string {
	byHost := make([][]int32, len(hosts))
	for i := range bars {
		byHost[bars[i].host] = append(byHost[bars[i].host], int32(i))
	}
	order := make([]int, len(hosts))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(hosts[a], hosts[b]) })

	var labels []string
	var free slotHeap
	for _, h := range order {
		idx := byHost[h]
		slices.SortFunc(idx, func(a, b int32) int {
			return cmp.Or(cmp.Compare(bars[a].start, bars[b].start), cmp.Compare(bars[a].end, bars[b].end))
		})
		free = free[:0]
		slots := 0
		for _, i := range idx {
			slot := slots
			if len(free) > 0 && free[0].end <= bars[i].start {
				slot = heap.Pop(&free).(slotEnd).slot
			} else {
				slots++
			}
			bars[i].lane = int32(len(labels) + slot)
			heap.Push(&free, slotEnd{bars[i].end, slot})
		}
		name := hosts[h]
		if name == "" {
			name = "(no host)"
		}
		for s := range slots {
			if slots == 1 {
				labels = append(labels, name)
			} else {
				labels = append(labels, name+" #"+strconv.Itoa(s+1))
			}
		}
	}
	return labels
}

// slotEnd is a worker slot and when its last attempt ended (Unix µs).
type slotEnd struct {
	end  int64
	slot int
}

// slotHeap orders slots by end time, then by number, so the lowest free slot is reused.
type slotHeap []slotEnd

func (h slotHeap) Len() int { return len(h) }
func (h slotHeap) Less(i, j int) bool {
	if h[i].end != h[j].end {
		return h[i].end < h[j].end
	}
	return h[i].slot < h[j].slot
}
func (h slotHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *slotHeap) Push(x any)   { *h = append(*h, x.(slotEnd)) }
func (h *slotHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
