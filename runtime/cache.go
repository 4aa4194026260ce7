package runtime

import (
	"context"

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
// into cached ones, and returns the tasks that must run, in order. A failed lookup runs them
// all and is remembered for the job's error.
func (d *driver) useCache(ctx context.Context, chunk []Task, items []item) []Task {
	keys := make([]string, 0, len(items))
	for i := range items {
		if items[i].key != "" {
			keys = append(keys, items[i].key)
		}
	}
	hits, err := d.cat.CacheHits(ctx, d.row.ID, keys)
	if err != nil {
		if d.cacheErr == nil && ctx.Err() == nil {
			d.cacheErr = err
		}
		return chunk
	}
	if len(hits) == 0 {
		return chunk
	}
	run := chunk[:0]
	for i := range items {
		if h, ok := hits[items[i].key]; ok && items[i].key != "" {
			items[i].kind, items[i].hit = itemCached, &h
			continue
		}
		run = append(run, chunk[i])
	}
	return run
}
