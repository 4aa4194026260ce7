package runtime

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
)

// Counts are a run's task counts so far. Done counts the tasks finished (completed, failed or
// canceled; for a resumed job, including those completed before), Failed and Cached the
// tasks among them that failed and that reused an earlier run's result; Total the tasks known,
// which grows while the params are still being read.
type Counts struct {
	Done, Failed, Cached, Total int
}

// CacheFlag is a run's choice about the cache, over the job file's `cache` statement.
type CacheFlag int

const (
	// CacheFromFile follows the job file: with `cache`, the run reuses earlier tasks.
	CacheFromFile CacheFlag = iota
	// CacheOn reuses earlier tasks whatever the file says (`run --cache`).
	CacheOn
	// CacheOff reuses nothing (`run --no-cache`); a job file with `cache` still records its
	// tasks' keys, so later runs can reuse what this one computed afresh.
	CacheOff
)

// cacheMode is the catalog's jobs.cache for a run of job with flag.
func cacheMode(job *lang.Job, flag CacheFlag) string {
	switch {
	case flag == CacheOn, flag == CacheFromFile && job.Cache:
		return catalog.CacheReuse
	case flag == CacheOff && job.Cache:
		return catalog.CacheRecord
	}
	return ""
}

// setupCache prepares the run's cache keys when its row says it records them, and records the
// job's key parts in the row.
func (d *driver) setupCache() error {
	if d.row.Cache == "" {
		return nil
	}
	k, err := NewCacheKeyer(d.job)
	if err != nil {
		return err
	}
	d.keyer, d.reuse = k, d.row.Cache == catalog.CacheReuse
	d.row.CacheParts = k.PartsJSON()
	return nil
}

// changedParts names the parts of a job's cache key that differ between two of its
// cache_parts, or none when either is missing.
func changedParts(was, now []byte) []string {
	var a, b map[string]string
	if was == nil || now == nil || json.Unmarshal(was, &a) != nil || json.Unmarshal(now, &b) != nil {
		return nil
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if b[k] != a[k] {
			out = append(out, partName(k)+" changed")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			out = append(out, partName(k)+" is new")
		}
	}
	return out
}

// partName names a part of cache_parts for a user.
func partName(k string) string {
	switch {
	case k == "func":
		return "the function"
	case k == "salt":
		return "$" + CacheSaltEnv
	case k == "format":
		return "the cache key's format"
	case strings.HasPrefix(k, "ship:"):
		return "shipped file " + strings.TrimPrefix(k, "ship:")
	}
	return k
}

// cacheKey is the cache key of the task with params set, or "" when the run records none. A
// set that cannot be written as JSON has no key: its task always runs.
func (d *driver) cacheKey(set map[string]any) string {
	if d.keyer == nil {
		return ""
	}
	key, err := d.keyer.Key(set)
	if err != nil {
		return ""
	}
	return key
}

// useCache looks up the cache keys of a chunk of planned tasks, turns the items of those found
// into cached ones, and returns the tasks that must run, in order. Each task's key is first
// looked for among the tasks about its index in the last run of the same job part (read in
// task order alongside the planner: a rerun costs one sequential read, whether sets were added
// or taken out); the others are looked up in cache_index, one statement per chunk, once the
// earlier runs of the same job part are in it. A run of a job part with no earlier run looks up
// nothing. A failed lookup runs the tasks and is remembered for the job's error.
func (d *driver) useCache(ctx context.Context, chunk []Task, items []item) []Task {
	var misses []string
	found := 0
	for i := range items {
		it := &items[i]
		if it.key == "" {
			continue
		}
		if t := d.peer.find(ctx, d, it.index, it.key); t != nil {
			h := t.Hit // t is the peer window's, reused once the window moves on
			it.kind, it.hit = itemCached, &h
			found++
			continue
		}
		misses = append(misses, it.key)
	}
	if len(misses) > 0 && !d.peer.any {
		misses = nil // no earlier run of this job part: nothing to find
	}
	if len(misses) > 0 && !d.indexed {
		d.indexed = true
		d.noteCacheErr(ctx, d.cat.IndexCacheRuns(ctx, d.row.CacheParts, d.row.ID))
	}
	if len(misses) > 0 {
		hits, err := d.cat.CacheHits(ctx, d.row.ID, misses)
		d.noteCacheErr(ctx, err)
		for i := range items {
			if h, ok := hits[items[i].key]; ok && items[i].kind == itemPlan && items[i].key != "" {
				items[i].kind, items[i].hit = itemCached, &h
				found++
			}
		}
	}
	if found == 0 {
		return chunk
	}
	run := chunk[:0]
	for i := range items {
		if items[i].kind != itemCached {
			run = append(run, chunk[i])
		}
	}
	return run
}

// noteCacheErr keeps the first failure of the cache, for the job's error: its tasks run.
func (d *driver) noteCacheErr(ctx context.Context, err error) {
	if err != nil && d.cacheErr == nil && ctx.Err() == nil {
		d.cacheErr = err
	}
}

// peerRun reads the Completed tasks of the last run of the same job part in task order, a
// window of peerWindow tasks at a time, as the planner needs them, and finds a task's key in
// the window. The window follows the planner at the offset of the last match, so that sets
// put in or taken out of the params (which move every later task's index) still find their
// tasks: a new task looks for its key a quarter of a window before the index it expects and
// three quarters after. Each read is short, so that no read transaction stays open while the
// run writes (it would keep SQLite from checkpointing its log). (Reading on a goroutine of its
// own, a window ahead, was slower: 1.06x-1.09x the rerun without cache instead of 0.96x-1.01x;
// on two cores it takes the writer's time.)
type peerRun struct {
	opened bool
	any    bool   // there is a peer run
	id     string // the peer run's job id; "" when there is none
	ended  bool   // the window holds the peer run's last task
	buf    []catalog.PeerTask
	byKey  map[string]int // the window's tasks by key: their place in buf
	offset int            // the peer's index minus the planner's, at the last match
}

// peerWindow is how many tasks of the peer run one read takes.
const peerWindow = 4096

// find is the peer run's Completed task with the given key, looked for about the planner's
// index (which must not decrease by more than a quarter of a window), or nil.
func (p *peerRun) find(ctx context.Context, d *driver, index int, key string) *catalog.PeerTask {
	if !p.opened {
		p.opened = true
		var err error
		p.id, err = d.cat.LastCacheRun(ctx, d.row.CacheParts, d.row.ID)
		p.any = p.id != "" || err != nil
		p.byKey = map[string]int{}
	}
	want := index + p.offset
	if p.id != "" && !p.ended && (len(p.buf) == 0 || want > p.buf[len(p.buf)-1].Index) {
		var next int
		var err error
		p.buf, next, err = d.cat.PeerTasks(ctx, p.id, max(0, want-peerWindow/4), peerWindow, p.buf[:0])
		p.ended = err != nil || next < 0
		clear(p.byKey)
		for i := range p.buf {
			p.byKey[p.buf[i].Key] = i
		}
	}
	i, ok := p.byKey[key]
	if !ok {
		return nil
	}
	t := &p.buf[i]
	p.offset = t.Index - index
	return t
}

func (p *peerRun) close() {
	p.buf, p.byKey, p.id = nil, nil, ""
}
