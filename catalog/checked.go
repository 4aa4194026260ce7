package catalog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SQLite's quick_check, which run and resume make before writing a job (Check), reads the
// whole file: about 3 s for a catalog of ten million tasks. A catalog that is as mapflow
// left it, when it last closed it after a check passed, is not read again. The stamp beside
// it (PATH-checked) records, at that close, the size, modification time and inode of the file
// and of its WAL; Open compares them before SQLite opens the file. Any other writer (a tool,
// a driver that died mid-write) changes them; a disk that rots a block in place does not.

// stampPath is the file that holds the catalog's stamp.
func (c *Catalog) stampPath() string { return c.path + "-checked" }

// fileStamp describes the catalog file at path and its WAL as the stamp records them; an
// empty WAL (a reader's) holds nothing.
func fileStamp(path string) string {
	path = realPath(path)
	var b strings.Builder
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil || p != path && fi.Size() == 0 {
			b.WriteString("none\n")
			continue
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		fmt.Fprintf(&b, "%d %d %d\n", fi.Size(), fi.ModTime().UnixNano(), ino)
	}
	return b.String()
}

// stampMatches tells whether the stamp beside the catalog at path describes it as it is. Only
// a small regular file is read: a stamp that is a FIFO or a link to a device is no stamp.
func stampMatches(path string) bool {
	fi, err := os.Lstat(path + "-checked")
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxStamp {
		return false
	}
	f, err := os.Open(path + "-checked")
	if err != nil {
		return false
	}
	defer f.Close()
	saved, err := io.ReadAll(io.LimitReader(f, maxStamp+1))
	return err == nil && string(saved) == fileStamp(path)
}

// maxStamp bounds a stamp's size: two lines of three numbers.
const maxStamp = 256

// writeStamp records the catalog as sound as it is now, once it is closed. Best effort: with
// no stamp, the next run checks the file.
//
// The kernel stamps a write with a coarse clock (a tick of a few milliseconds), so a write
// right after mapflow's last one could leave the time as it was. The file's time is first
// set to the precise time now: any later write sets a tick's time, which is not it.
func (c *Catalog) writeStamp() {
	now := time.Now()
	path := realPath(c.path)
	for _, p := range []string{path, path + "-wal"} {
		if err := os.Chtimes(p, now, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
	tmp := c.stampPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(fileStamp(c.path)), 0o600); err != nil {
		os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, c.stampPath()); err != nil {
		os.Remove(tmp)
	}
}

// realPath is path with its symlinks resolved (path itself when that fails): SQLite keeps
// the WAL beside the file a symlink names.
func realPath(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real
	}
	return path
}
