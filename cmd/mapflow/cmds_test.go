package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mapflow/mapflow/catalog"
)

// scriptCmds are the commands the CLI scripts use beyond testscript's own.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// sleep DURATION
	"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
		d, err := time.ParseDuration(args[0])
		ts.Check(err)
		time.Sleep(d)
	},
	// waitsql QUERY: poll the catalog until QUERY's first cell is non-zero (60 s at most).
	"waitsql": func(ts *testscript.TestScript, neg bool, args []string) {
		deadline := time.Now().Add(60 * time.Second)
		var last string
		for time.Now().Before(deadline) {
			if r, err := catalog.OpenReader(ts.Getenv("MAPFLOW_CATALOG")); err == nil {
				_, rows, err := r.Query(context.Background(), args[0])
				r.Close()
				if err == nil && len(rows) > 0 && len(rows[0]) > 0 {
					last = fmt.Sprint(rows[0][0])
					if last != "0" && last != "<nil>" && last != "false" {
						return
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		ts.Fatalf("waitsql: %q still gave %q after 60s", args[0], last)
	},
	// runsonce BEFORE RUNS N: every task index listed in BEFORE (one per line, e.g. from
	// `mapflow sql --format csv`) ran exactly once according to RUNS (one index per run), and
	// every index 0..N-1 ran at least once.
	"runsonce": func(ts *testscript.TestScript, neg bool, args []string) {
		runs := map[int]int{}
		for _, f := range strings.Fields(ts.ReadFile(args[1])) {
			i, err := strconv.Atoi(f)
			ts.Check(err)
			runs[i]++
		}
		before := 0
		for _, f := range strings.Fields(ts.ReadFile(args[0])) {
			i, err := strconv.Atoi(f)
			if err != nil {
				continue // the csv header
			}
			before++
			if runs[i] != 1 {
				ts.Fatalf("task %d was Completed before the kill but ran %d times", i, runs[i])
			}
		}
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		for i := 0; i < n; i++ {
			if runs[i] == 0 {
				ts.Fatalf("task %d never ran", i)
			}
		}
		if before == 0 {
			ts.Fatalf("no task was Completed before the kill: the test proves nothing")
		}
		ts.Logf("%d tasks completed before the kill, each ran once; %d runs in all for %d tasks", before, len(strings.Fields(ts.ReadFile(args[1]))), n)
	},
	// sqlloop N QUERY: run `mapflow sql QUERY` N times, 50 ms apart; each must succeed, and
	// none may say the database is locked or busy.
	"sqlloop": func(ts *testscript.TestScript, neg bool, args []string) {
		n, err := strconv.Atoi(args[0])
		ts.Check(err)
		for i := 0; i < n; i++ {
			if err := ts.Exec("mapflow", "sql", args[1]); err != nil {
				ts.Fatalf("query %d of %d failed: %v\n%s", i+1, n, err, ts.ReadFile("stderr"))
			}
			if e := ts.ReadFile("stderr"); strings.Contains(e, "locked") || strings.Contains(e, "busy") {
				ts.Fatalf("query %d of %d: %s", i+1, n, e)
			}
			time.Sleep(50 * time.Millisecond)
		}
	},
	// pidgone FILE: the process whose id is in FILE no longer runs.
	"pidgone": func(ts *testscript.TestScript, neg bool, args []string) {
		pid, err := strconv.Atoi(strings.TrimSpace(ts.ReadFile(args[0])))
		ts.Check(err)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if err := syscall.Kill(pid, 0); err != nil {
				return
			}
			// A zombie still answers kill 0; its state in /proc says it is dead.
			if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(stat), ") Z ") {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		ts.Fatalf("process %d is still running", pid)
	},
}
