package main

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	// tmpfs DIR SIZE: mount a tmpfs of SIZE (e.g. 256k) at DIR, or resize the one mounted
	// there; it is unmounted when the script ends. SIZE ro or rw remounts it read-only or
	// read-write. Needs root (the [root] condition).
	scriptCmds["tmpfs"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: tmpfs DIR SIZE")
		}
		dir := ts.MkAbs(args[0])
		if _, err := os.Stat(dir); err == nil {
			opt := "size=" + args[1]
			if args[1] == "ro" || args[1] == "rw" {
				opt = args[1]
			}
			if out, err := exec.Command("mount", "-o", "remount,"+opt, dir).CombinedOutput(); err != nil {
				ts.Fatalf("remount %s: %v\n%s", dir, err, out)
			}
			return
		}
		ts.Check(os.MkdirAll(dir, 0o755))
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+args[1], "tmpfs", dir).CombinedOutput(); err != nil {
			ts.Fatalf("mount a tmpfs at %s: %v\n%s", dir, err, out)
		}
		ts.Defer(func() { exec.Command("umount", "-l", filepath.Clean(dir)).Run() })
	}
}
