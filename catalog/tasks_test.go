package catalog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The values a chunk of rows shares are written as literals of the statement: they must read
// back exactly as bound values would, with the same SQL types, whatever their text.
func TestPutTasksSharedValues(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	hosts := []string{
		"o'brien's host",           // a quote, doubled in the literal
		"nul\x00inside",            // not a literal: bound
		"bad utf-8 \xff",           // not a literal: bound
		"-- not a comment; DROP x", // SQL inside text stays text
	}
	var want []Task
	for chunk, host := range hosts {
		// Each chunk of rowsPerStmt rows shares its host and job id; the last chunk is a
		// short tail.
		n := rowsPerStmt
		if chunk == len(hosts)-1 {
			n = 7
		}
		for i := range n {
			idx := len(want)
			row := Task{JobID: "it's-a-job", Index: idx, Name: fmt.Sprintf("add-%d", idx),
				Params: []byte(fmt.Sprintf(`{"x":%d}`, idx)), Status: StatusCompleted, Host: host,
				Attempt: 1, Start: t0, End: t0.Add(time.Duration(idx) * time.Microsecond), Result: []byte(`2`)}
			if chunk == 1 && i == 3 {
				// One row that differs in the columns the others share.
				row.Status, row.Result, row.Attempt = StatusFailed, nil, 2
				row.Exception, row.Message, row.ExitCode = "ExitError", "exit status 1", intp(1)
			}
			want = append(want, row)
		}
	}
	if err := c.PutTasks(ctx, want); err != nil {
		t.Fatal(err)
	}
	var wantPtrs []*Task
	for i := range want {
		wantPtrs = append(wantPtrs, &want[i])
	}
	if d := cmp.Diff(wantPtrs, collectTasks(t, c, "it's-a-job")); d != "" {
		t.Errorf("tasks differ (-want +got):\n%s", d)
	}
	var types string
	err := c.r.QueryRowContext(ctx, `SELECT group_concat(DISTINCT typeof(job_id) || typeof(task_index) ||
		typeof(status) || typeof(host) || typeof(attempt) || typeof(start_time) || typeof(run_time) ||
		typeof(result) || typeof(params) || typeof(exception)) FROM tasks WHERE status = 'Completed'`).Scan(&types)
	if err != nil {
		t.Fatal(err)
	}
	if want := "textintegertexttextintegertextrealtexttextnull"; types != want {
		t.Errorf("column types %q, want %q", types, want)
	}
}

// argConv.time keeps the text of the last second it formatted: every time must still read as
// appendTime formats it.
func TestArgConvTime(t *testing.T) {
	var a argConv
	a.reset()
	zone := time.FixedZone("E", -3600)
	for _, tm := range []time.Time{
		t0, t0.Add(time.Microsecond), t0.Add(400 * time.Millisecond), t0.In(zone),
		t0.Add(time.Second), t0.Add(-time.Second), t0.Add(-time.Second + 5*time.Microsecond),
		time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, _ := a.time(tm).(string)
		if want := string(appendTime(nil, tm)); got != want {
			t.Errorf("time(%v) = %q, want %q", tm, got, want)
		}
	}
}
