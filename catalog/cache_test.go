package catalog

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cacheJob records a job that recorded cache keys with parts, and its tasks: one per key,
// Completed unless its key is in failed, cached (from "src/0") when in cached.
func cacheJob(t *testing.T, c *Catalog, id string, at time.Time, parts string, keys []string, failed, cached map[string]bool) {
	t.Helper()
	ctx := context.Background()
	j := testJob(id, "sweep", at)
	j.Status, j.Cache, j.CacheParts = StatusCompleted, CacheReuse, []byte(parts)
	if err := c.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	var rows []Task
	for i, k := range keys {
		r := Task{JobID: id, Index: i, Name: "f-" + string(rune('0'+i)), Params: []byte(`{}`), Status: StatusCompleted,
			Attempt: 1, Start: at, End: at.Add(time.Duration(i+1) * time.Second), Result: []byte(`"` + id + k + `"`), CacheKey: k}
		if failed[k] {
			r.Status, r.Result, r.Exception = StatusFailed, nil, "ExitError"
		}
		if cached[k] {
			r.Attempt, r.CachedFrom, r.RunTime, r.Start, r.End = 0, "src/0", 7.5, time.Time{}, time.Time{}
		}
		rows = append(rows, r)
	}
	if err := c.PutTasks(ctx, rows); err != nil {
		t.Fatal(err)
	}
}

// TestCacheLookups: a key is found at the same index of the last run of the same job part, and
// in cache_index once the runs are indexed; failed tasks and other job parts are never found.
func TestCacheLookups(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	cacheJob(t, c, "a", t0, `{"func":"1"}`, []string{"k0", "k1", "k2"}, map[string]bool{"k1": true}, nil)
	cacheJob(t, c, "b", t0.Add(time.Minute), `{"func":"1"}`, []string{"k0", "k3"}, nil, map[string]bool{"k0": true})
	cacheJob(t, c, "other", t0.Add(2*time.Minute), `{"func":"2"}`, []string{"k9"}, nil, nil)

	if id, err := c.LastCacheRun(ctx, []byte(`{"func":"1"}`), "new"); err != nil || id != "b" {
		t.Errorf("LastCacheRun = %q, %v; want b", id, err)
	}
	if id, err := c.LastCacheRun(ctx, []byte(`{"func":"3"}`), "new"); err != nil || id != "" {
		t.Errorf("LastCacheRun of unknown parts = %q, %v; want none", id, err)
	}

	peer, next, err := c.PeerTasks(ctx, "a", 0, 10, nil)
	if err != nil || next != -1 {
		t.Fatalf("PeerTasks: next %d, %v", next, err)
	}
	want := []PeerTask{
		{Index: 0, Key: "k0", Hit: CacheHit{From: "a/0", RunTime: 1, Result: []byte(`"ak0"`)}},
		{Index: 2, Key: "k2", Hit: CacheHit{From: "a/2", RunTime: 3, Result: []byte(`"ak2"`)}},
	}
	if d := cmp.Diff(want, peer); d != "" {
		t.Errorf("PeerTasks of a (-want +got):\n%s", d)
	}
	peer, next, err = c.PeerTasks(ctx, "b", 0, 1, nil)
	if err != nil || next != 1 || len(peer) != 1 || peer[0].Hit.From != "src/0" || peer[0].Hit.RunTime != 7.5 {
		t.Errorf("PeerTasks of b, one: %+v, next %d, %v; want the cached task naming its source", peer, next, err)
	}

	// Nothing is in cache_index before IndexCacheRuns.
	if hits, err := c.CacheHits(ctx, "new", []string{"k0"}); err != nil || len(hits) != 0 {
		t.Errorf("CacheHits before indexing = %v, %v; want none", hits, err)
	}
	if err := c.IndexCacheRuns(ctx, []byte(`{"func":"1"}`), "new"); err != nil {
		t.Fatal(err)
	}
	hits, err := c.CacheHits(ctx, "new", []string{"k0", "k1", "k2", "k3", "k9", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	wantHits := map[string]CacheHit{
		"k0": {From: "a/0", RunTime: 1, Result: []byte(`"ak0"`)},
		"k2": {From: "a/2", RunTime: 3, Result: []byte(`"ak2"`)},
		"k3": {From: "b/1", RunTime: 2, Result: []byte(`"bk3"`)},
	}
	if d := cmp.Diff(wantHits, hits); d != "" {
		t.Errorf("CacheHits (-want +got):\n%s", d)
	}
	// A job's own tasks are not hits for it.
	if hits, err := c.CacheHits(ctx, "a", []string{"k0"}); err != nil || len(hits) != 0 {
		t.Errorf("CacheHits of a's own key for a = %v, %v; want none", hits, err)
	}
	if n, err := c.CountCached(ctx, "b"); err != nil || n != 1 {
		t.Errorf("CountCached(b) = %d, %v; want 1", n, err)
	}
}
