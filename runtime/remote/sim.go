package remote

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	rt "github.com/mapflow/mapflow/runtime"
)

// SimWorker stands in for a worker in benchmarks of the driver, the store protocol and the
// catalog at sizes no machine here could run for real (a hundred million tasks on a thousand
// hosts): it claims chunks through the staging protocol as a Worker does, reads each chunk,
// and writes a Completed result for each of its tasks without running it, its value the
// task's index. Nothing but benchmarks uses it.
type SimWorker struct {
	Store Store
	ID    string // unique among the job's workers
	// Poll is how often it looks for new chunks; 0 is DefaultPoll.
	Poll time.Duration
	// Tasks counts the tasks it answered.
	Tasks atomic.Int64
}

// Run claims and answers chunks until none is left to claim or ctx ends.
func (w *SimWorker) Run(ctx context.Context) error {
	poll := w.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	sc := &scanner{store: w.Store, id: w.ID, poll: poll}
	host := "sim-" + w.ID
	var out []byte
	for {
		chunk, run, err := sc.claim(ctx)
		if err != nil || chunk < 0 {
			return err
		}
		data, err := w.Store.Get(ctx, chunkObject(chunk))
		if err != nil {
			return fmt.Errorf("sim worker %s: read chunk %d: %w", w.ID, chunk, err)
		}
		tasks, err := decodeLines[taskLine](data)
		if err != nil {
			return fmt.Errorf("sim worker %s: read chunk %d: %w", w.ID, chunk, err)
		}
		now := time.Now().UnixNano()
		out = out[:0]
		for _, t := range tasks {
			l := resultLine{Index: t.Index, Attempt: t.Attempt + 1, Status: rt.Completed, Host: host,
				Start: now, End: now, Value: strconv.AppendInt(nil, int64(t.Index), 10)}
			out, _ = l.appendFast(out)
		}
		if err := w.Store.Put(ctx, resultObject(chunk, run), out); err != nil {
			return fmt.Errorf("sim worker %s: write results of chunk %d: %w", w.ID, chunk, err)
		}
		w.Tasks.Add(int64(len(tasks)))
	}
}
