package catalog

import (
	"context"
	"database/sql"
	"errors"
	"os"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// reserveSize is the room kept beside the catalog for a job's last words. A job that fills
// the disk must still record how it ended (or that its driver left the remote work running),
// and that needs a few pages of WAL: the reserve file is deleted to make that room.
const reserveSize = 256 << 10

// reservePath is the file that holds the catalog's reserve.
func (c *Catalog) reservePath() string { return c.path + "-reserve" }

// keepReserve makes sure the reserve file exists at its full size, writing it (zeros: a sparse
// file would reserve nothing) when it is missing or short. It is best effort: on a disk that
// is already full the catalog works without one.
func (c *Catalog) keepReserve() {
	p := c.reservePath()
	if fi, err := os.Stat(p); err == nil && fi.Size() >= reserveSize {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, werr := f.Write(make([]byte, reserveSize))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(p)
	}
}

// releaseReserve deletes the reserve file, freeing its room; it tells whether there was one.
func (c *Catalog) releaseReserve() bool {
	return os.Remove(c.reservePath()) == nil
}

// isFull tells whether err is a write that failed for want of disk space.
func isFull(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}

// writeLast is write for the few rows that must land even on a full disk: a job's end. When
// the disk is full it frees the reserve and tries once more.
func (c *Catalog) writeLast(ctx context.Context, fn func(*sql.Tx) error) error {
	err := c.write(ctx, fn)
	if isFull(err) && c.releaseReserve() {
		err = c.write(ctx, fn)
	}
	return err
}
