// Command goloop is the Go peer of mapflow's expression benchmark: a plain loop that computes
// x + y for n parameter sets and inserts the rows mapflow's catalog holds for them (job id,
// index, name, params JSON, status, host, attempt, start and end time, run time, result) into
// SQLite with modernc.org/sqlite, the driver mapflow uses. Rows go in 500-row multi-VALUES
// INSERTs, 10,000 rows to a transaction, in WAL mode with synchronous=NORMAL: the practical
// limit of writing such rows from Go through database/sql, with nothing else going on.
//
//	go run ./bench/goloop -n 1000000 -db /tmp/goloop.db
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

const schema = `CREATE TABLE tasks (
	job_id TEXT NOT NULL, task_index INTEGER NOT NULL, task_name TEXT, params TEXT,
	status TEXT NOT NULL, host TEXT, attempt INTEGER NOT NULL DEFAULT 0, start_time TEXT,
	end_time TEXT, run_time REAL, result TEXT, exception TEXT, exception_message TEXT,
	exception_traceback TEXT, exit_code INTEGER,
	PRIMARY KEY (job_id, task_index)
) WITHOUT ROWID`

const columns = 15

func main() {
	n := flag.Int("n", 1000000, "tasks")
	path := flag.String("db", "goloop.db", "SQLite file to create (replaced)")
	perStmt := flag.Int("rows", 500, "rows per INSERT statement")
	perTx := flag.Int("tx", 10000, "rows per transaction")
	flag.Parse()
	if err := run(*n, *path, *perStmt, *perTx); err != nil {
		fmt.Fprintln(os.Stderr, "goloop:", err)
		os.Exit(1)
	}
}

func run(n int, path string, perStmt, perTx int) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		return err
	}
	row := "(?" + strings.Repeat(", ?", columns-1) + ")"
	insert := func(rows int) string {
		return "INSERT INTO tasks VALUES " + row + strings.Repeat(", "+row, rows-1)
	}
	jobID := "add-" + time.Now().UTC().Format("20060102-150405") + "-0000"
	host, _ := os.Hostname()

	args := make([]any, 0, perStmt*columns)
	var tx *sql.Tx
	var full *sql.Stmt
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		var err error
		if len(args) == perStmt*columns {
			if full == nil {
				if full, err = tx.Prepare(insert(perStmt)); err != nil {
					return err
				}
			}
			_, err = full.Exec(args...)
		} else {
			_, err = tx.Exec(insert(len(args)/columns), args...)
		}
		args = args[:0]
		return err
	}
	commit := func() error {
		if err := flush(); err != nil {
			return err
		}
		if full != nil {
			full.Close()
			full = nil
		}
		return tx.Commit()
	}
	for i := range n {
		if i%perTx == 0 {
			if tx != nil {
				if err := commit(); err != nil {
					return err
				}
			}
			if tx, err = db.Begin(); err != nil {
				return err
			}
		}
		x, y := i+1, i+1
		start := time.Now()
		result := x + y
		end := time.Now()
		params := `{"x":` + strconv.Itoa(x) + `,"y":` + strconv.Itoa(y) + `}`
		args = append(args, jobID, int64(i), "add-"+strconv.Itoa(i), params, "Completed", host,
			int64(1), timeText(start), timeText(end), end.Sub(start).Seconds(),
			strconv.Itoa(result), nil, nil, nil, nil)
		if len(args) == perStmt*columns {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if tx != nil {
		return commit()
	}
	return nil
}

// timeText is the catalog's time format: UTC 'YYYY-MM-DD HH:MM:SS.ffffff'.
func timeText(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.000000")
}
