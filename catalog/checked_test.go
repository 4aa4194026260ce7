package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
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
