package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Errors a Store returns, tested with errors.Is.
var (
	// ErrExist: Create found an object of that name already.
	ErrExist = fs.ErrExist
	// ErrNotExist: Get found no object of that name.
	ErrNotExist = fs.ErrNotExist
)

// Store holds a staged job's objects, named by slash-separated paths relative to the job's
// directory. Implementations: an HDFS directory, an S3 prefix, a local directory (DirStore).
type Store interface {
	// Put writes data as name, replacing any object of that name. Readers see the whole
	// object or none of it.
	Put(ctx context.Context, name string, data []byte) error
	// Create writes data as name only if no object has that name, else returns an error
	// wrapping ErrExist. Of several workers creating one name, exactly one succeeds.
	Create(ctx context.Context, name string, data []byte) error
	// Get reads the object name; an error wrapping ErrNotExist when there is none.
	Get(ctx context.Context, name string) ([]byte, error)
	// List returns the base names of the objects directly under the directory dir that sort
	// after after ("" for all), sorted; none (not an error) when dir does not exist. Chunks
	// are named in order, so a reader lists only from the first chunk it still waits for.
	List(ctx context.Context, dir, after string) ([]string, error)
}

// DirStore is a Store in a local directory: for tests, and for workers sharing a file system.
type DirStore string

var _ Store = DirStore("")

func (d DirStore) path(name string) string {
	return filepath.Join(string(d), filepath.FromSlash(path.Clean("/"+name)))
}

// Put writes name through a temporary file and a rename, so readers never see half of it.
func (d DirStore) Put(_ context.Context, name string, data []byte) error {
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// Create links a complete temporary file to name: link fails when name exists, so the object
// is created whole and only once.
func (d DirStore) Create(_ context.Context, name string, data []byte) error {
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".create-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", name, ErrExist)
		}
		return err
	}
	return nil
}

// Get reads name.
func (d DirStore) Get(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(d.path(name))
}

// List lists dir, leaving out the temporary files of Put and Create.
func (d DirStore) List(_ context.Context, dir, after string) ([]string, error) {
	entries, err := os.ReadDir(d.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() > after {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

var (
	openersMu sync.RWMutex
	openers   = map[string]func(ctx context.Context, u *url.URL) (Store, func(), error){
		"file": func(_ context.Context, u *url.URL) (Store, func(), error) { return DirStore(u.Path), func() {}, nil },
	}
)

// RegisterStore declares how a worker opens a store URL of the given scheme (hdfs://…,
// s3://…); a backend package calls it once, from init. open returns the store and how to close
// it.
func RegisterStore(scheme string, open func(ctx context.Context, u *url.URL) (Store, func(), error)) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[scheme] = open
}

// OpenStore opens the store a worker is pointed at: file:///dir, or a URL of a scheme a
// backend registered.
func OpenStore(ctx context.Context, raw string) (Store, func(), error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("store %q: %w", raw, err)
	}
	openersMu.RLock()
	open, ok := openers[u.Scheme]
	schemes := make([]string, 0, len(openers))
	for s := range openers {
		schemes = append(schemes, s+"://")
	}
	openersMu.RUnlock()
	if !ok {
		slices.Sort(schemes)
		return nil, nil, fmt.Errorf("store %q: use a URL of %s", raw, strings.Join(schemes, ", "))
	}
	return open(ctx, u)
}
