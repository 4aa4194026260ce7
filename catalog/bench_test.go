package catalog

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPutTasks writes a job of 1,000,000 realistic task rows in calls of 10,000 rows, as
// a driver does, into a new catalog file, and reports rows per second.
//
//	go test ./catalog -run '^$' -bench PutTasks -benchtime 3x
func BenchmarkPutTasks(b *testing.B) {
	const (
		total = 1_000_000
		batch = 10_000
	)
	ctx := context.Background()
	rows := make([]Task, batch)
	base := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	for i := range rows {
		rows[i] = Task{
			JobID:   "0f8fad5b-d9cb-469f-a165-70867728950e",
			Name:    fmt.Sprintf("add-%d", i),
			Params:  []byte(fmt.Sprintf(`{"x":%d,"y":%d}`, i%1000, i%1000)),
			Status:  StatusCompleted,
			Host:    "worker-1.example.com",
			Attempt: 1,
			Start:   base.Add(time.Duration(i) * time.Millisecond),
			End:     base.Add(time.Duration(i)*time.Millisecond + 1234*time.Microsecond),
			Result:  []byte(fmt.Sprintf("%d", 2*(i%1000))),
		}
	}
	names := make([]string, total) // as the driver names them: <func>-<index>
	for i := range names {
		names[i] = fmt.Sprintf("add-%d", i)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		c, err := Open(filepath.Join(b.TempDir(), fmt.Sprintf("catalog%d.db", n)))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for off := 0; off < total; off += batch {
			for i := range rows {
				rows[i].Index = off + i
				rows[i].Name = names[off+i]
			}
			if err := c.PutTasks(ctx, rows); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
