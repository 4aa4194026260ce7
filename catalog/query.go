package catalog

import "context"

// Reader is a read-only view of the catalog for user SQL (`mapflow sql`): no statement run
// through it can change the catalog or write any other file.
type Reader struct{}

// OpenReader opens the catalog at path read-only.
func OpenReader(path string) (*Reader, error) { return nil, errNotImplemented }

// Close closes the reader.
func (r *Reader) Close() error { return nil }

// Query runs one user statement and returns its column names and rows.
func (r *Reader) Query(ctx context.Context, q string) (cols []string, rows [][]any, err error) {
	return nil, nil, errNotImplemented
}
