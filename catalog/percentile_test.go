package catalog

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestPercentiles checks the percentile aggregates against the figures of SQLite's own
// percentile tests (the values 1, 4, 6, 7, 8, 9, 11, 11, 11), through the Reader that
// `mapflow sql` uses.
func TestPercentiles(t *testing.T) {
	r, _ := readerFixture(t)
	ctx := context.Background()
	const vals = `(VALUES (1), (4), (NULL), (6), (7), (8), (9), (11), (11), (11))`
	one := func(q string) any {
		t.Helper()
		_, rows, err := r.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(rows) != 1 || len(rows[0]) != 1 {
			t.Fatalf("%s: rows %v", q, rows)
		}
		return rows[0][0]
	}
	for _, tc := range []struct {
		p          float64
		cont, disc float64
	}{
		{100, 11, 11}, {50, 8, 8}, {12.5, 4, 4}, {15, 4.4, 4}, {20, 5.2, 4}, {80, 11, 11}, {89, 11, 11}, {0, 1, 1},
	} {
		for q, want := range map[string]float64{
			fmt.Sprintf("SELECT percentile(column1, %g) FROM %s", tc.p, vals):               tc.cont,
			fmt.Sprintf("SELECT percentile_cont(column1, %g) FROM %s", tc.p/100, vals):      tc.cont,
			fmt.Sprintf("SELECT percentile_disc(column1, %g) FROM %s", tc.p/100, vals):      tc.disc,
			fmt.Sprintf("SELECT percentile(CAST(column1 AS TEXT), %g) FROM %s", tc.p, vals): tc.cont,
		} {
			if got, ok := one(q).(float64); !ok || got < want-1e-9 || got > want+1e-9 {
				t.Errorf("%s = %v, want %v", q, got, want)
			}
		}
	}
	if got := one(`SELECT median(column1) FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10))`); got != 5.5 {
		t.Errorf("median of 1..10 = %v, want 5.5", got)
	}
	if got := one(`SELECT median(run_time) FROM tasks WHERE job_id = 'nope'`); got != nil {
		t.Errorf("median of nothing = %v, want NULL", got)
	}
	if got := one(`SELECT percentile(run_time, 50) FROM tasks WHERE job_id = 'j1'`); got != 1.0 {
		t.Errorf("p50 of the run times 2, 1, 1 = %v, want 1", got)
	}
	// As a window function: the running median.
	_, rows, err := r.Query(ctx, `SELECT median(column1) OVER (ORDER BY column1 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM (VALUES (1), (3), (10))`)
	if err != nil || fmt.Sprint(rows) != "[[1] [2] [6.5]]" {
		t.Errorf("running median: %v, %v", rows, err)
	}
	for q, want := range map[string]string{
		`SELECT percentile(column1, 101) FROM (VALUES (1))`:          "percentile: the second argument must be a number from 0 to 100",
		`SELECT percentile_cont(column1, 'half') FROM (VALUES (1))`:  "percentile_cont: the second argument must be a number from 0 to 1",
		`SELECT percentile(column1, column1) FROM (VALUES (1), (2))`: "must be the same on every row",
		`SELECT median(column1) FROM (VALUES ('fast'))`:              `median: the values must be numbers: "fast" is not a number`,
		`SELECT median(column1) FROM (VALUES (1e999))`:               "infinity",
		`SELECT percentile(status) FROM tasks`:                       "wrong number of arguments",
	} {
		if _, _, err := r.Query(ctx, q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one with %q", q, err, want)
		}
	}
}
