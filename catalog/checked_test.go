package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A catalog is quick_checked until a mapflow that checked it closes it; then, while the file
// stays as it was left, Check trusts it. Any change to the file behind mapflow's back brings
// the check back.
func TestCheckTrustsOnlyTheFileItLeft(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	open := func() *Catalog {
		t.Helper()
		c, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Enough rows to put pages past the one the damage overwrites.
	c := open()
	if err := c.CreateJob(ctx, testJob("j1", "many", t0)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		rows := make([]Task, 1000)
		for k := range rows {
			rows[k] = Task{JobID: "j1", Index: i*1000 + k, Name: fmt.Sprint("f-", i*1000+k), Params: []byte(`{"x":1}`), Status: "Completed", Result: []byte("1")}
		}
		if err := c.PutTasks(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	// A close without a check leaves no stamp.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-checked"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a catalog nobody checked was stamped: %v", err)
	}
	c = open()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-checked"); err != nil {
		t.Fatalf("a checked catalog was not stamped: %v", err)
	}

	// Garbage in its middle, its modification time put back: as mapflow left it, as far as
	// the stamp tells, so Check trusts it (the documented limit).
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	damage := func() {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		garbage := make([]byte, 2*pageSize)
		for i := range garbage {
			garbage[i] = byte(i*7 + 3)
		}
		if _, err := f.WriteAt(garbage, int64(4*pageSize)); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	damage()
	if err := os.Chtimes(path, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	c = open()
	if err := c.Check(ctx); err != nil {
		t.Errorf("a catalog as its stamp describes it was checked again: %v", err)
	}
	c.Close()

	// Written again, as any writer would, the garbage changes the file's time: the check
	// runs and finds it.
	damage()
	c = open()
	err = c.Check(ctx)
	c.Close()
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("damaged catalog without a stamp: Check = %v", err)
	}
	c = open()
	err = c.Check(ctx)
	c.Close()
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("a catalog that failed its check was trusted afterwards: Check = %v", err)
	}
}

// A stamp that is a FIFO or a link to a device is no stamp: Open neither hangs nor reads
// without end, and Check runs.
func TestStampThatIsNotAFile(t *testing.T) {
	ctx := context.Background()
	for name, mk := range map[string]func(p string) error{
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"/dev/zero": func(p string) error { return os.Symlink("/dev/zero", p) },
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			if err := mk(path + "-checked"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				c, err := Open(path)
				if err == nil {
					if c.sound {
						err = errors.New("trusted without a stamp")
					} else {
						err = c.Check(ctx)
					}
					c.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Open or Check hung on the stamp")
			}
		})
	}
}

// A write whose context ends mid-transaction leaves the catalog writable: the next write
// does not fail with "cannot start a transaction within a transaction".
func TestWriteAfterCanceledTransaction(t *testing.T) {
	c, _ := openTemp(t)
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		_ = c.write(ctx, func(tx *sql.Tx) error {
			cancel()
			_, err := tx.ExecContext(ctx, "INSERT INTO jobs (job_id, name, status) VALUES (?, 'x', 'Running')", fmt.Sprint("c", i))
			return err
		})
		if err := c.CreateJob(context.Background(), testJob(fmt.Sprint("j", i), "ok", t0)); err != nil {
			t.Fatalf("write after a canceled one (round %d): %v", i, err)
		}
	}
}
