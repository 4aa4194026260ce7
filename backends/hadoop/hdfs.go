package hadoop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	"github.com/colinmarc/hdfs/v2"

	"github.com/mapflow/mapflow/runtime/remote"
)

// Store is a remote.Store in an HDFS directory. Objects are files; Put writes a temporary
// file and renames it over the name, Create relies on the NameNode refusing to create a file
// that exists.
type Store struct {
	c    *hdfs.Client
	root string
}

var _ remote.Store = (*Store)(nil)

// OpenStore connects to the NameNode at namenode (host:port) as user and returns the Store
// rooted at dir.
func OpenStore(namenode, user, dir string) (*Store, error) {
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{namenode}, User: user})
	if err != nil {
		return nil, fmt.Errorf("hdfs %s: %w", namenode, err)
	}
	return &Store{c: c, root: path.Clean(dir)}, nil
}

// Client is the store's HDFS client.
func (s *Store) Client() *hdfs.Client { return s.c }

// Close closes the connection.
func (s *Store) Close() error { return s.c.Close() }

func (s *Store) path(name string) string { return path.Join(s.root, path.Clean("/"+name)) }

// write writes data to a new file p, creating its directory when missing. The NameNode
// refuses to create a file that exists (or is being created): the error wraps fs.ErrExist.
// Files get the cluster's default replication and block size; privacy comes from the job
// directory's mode (0700).
func (s *Store) write(p string, data io.Reader, n int64) error {
	if n == 0 {
		// The NameNode never reports an empty file written by this client complete.
		return errors.New("refusing to write an empty file")
	}
	w, err := s.c.Create(p)
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.c.MkdirAll(path.Dir(p), 0o700); err != nil {
			return err
		}
		w, err = s.c.Create(p)
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, data); err != nil {
		w.Close()
		return err
	}
	return closeWriter(w)
}

// closeWriter closes an HDFS file, retrying while the NameNode has not yet heard from the
// DataNode about the last block ("replication in progress"), as the client means it to be.
func closeWriter(w *hdfs.FileWriter) error {
	for i := 0; ; i++ {
		err := w.Close()
		if err == nil || !hdfs.IsErrReplicating(err) || i == 200 {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Upload copies the local file to name (replacing it) and returns its HDFS URL, length and
// modification time in milliseconds: what YARN needs to localize it into a container.
func (s *Store) Upload(namenode, local, name string) (url string, size, mtime int64, err error) {
	f, err := os.Open(local)
	if err != nil {
		return "", 0, 0, err
	}
	defer f.Close()
	lfi, err := f.Stat()
	if err != nil {
		return "", 0, 0, err
	}
	// Streamed: the binary is some 80 MB the driver need not hold.
	if err := s.put(name, f, lfi.Size()); err != nil {
		return "", 0, 0, err
	}
	p := s.path(name)
	fi, err := s.c.Stat(p)
	if err != nil {
		return "", 0, 0, fmt.Errorf("hdfs stat %s: %w", p, err)
	}
	st, ok := fi.Sys().(*hdfs.FileStatus)
	if !ok {
		return "", 0, 0, fmt.Errorf("hdfs stat %s: no file status", p)
	}
	return "hdfs://" + namenode + p, int64(st.GetLength()), int64(st.GetModificationTime()), nil
}

// MakeRoot creates the store's directory, readable by its owner only.
func (s *Store) MakeRoot() error {
	if err := s.c.MkdirAll(s.root, 0o700); err != nil {
		return fmt.Errorf("hdfs mkdir %s: %w", s.root, err)
	}
	if err := s.c.Chmod(s.root, 0o700); err != nil {
		return fmt.Errorf("hdfs chmod %s: %w", s.root, err)
	}
	return nil
}

// Put implements remote.Store.
func (s *Store) Put(_ context.Context, name string, data []byte) error {
	return s.put(name, bytes.NewReader(data), int64(len(data)))
}

// put writes the n bytes of data to name through a temporary file renamed into place, so
// that a reader never sees it half written.
func (s *Store) put(name string, data io.Reader, n int64) error {
	p := s.path(name)
	var b [8]byte
	_, _ = rand.Read(b[:])
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+"."+hex.EncodeToString(b[:]))
	if err := s.write(tmp, data, n); err != nil {
		return fmt.Errorf("hdfs put %s: %w", p, err)
	}
	if err := s.c.Rename(tmp, p); err != nil {
		s.c.Remove(tmp)
		return fmt.Errorf("hdfs put %s: %w", p, err)
	}
	return nil
}

// Create implements remote.Store.
func (s *Store) Create(_ context.Context, name string, data []byte) error {
	p := s.path(name)
	if err := s.write(p, bytes.NewReader(data), int64(len(data))); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("hdfs create %s: %w", p, remote.ErrExist)
		}
		return fmt.Errorf("hdfs create %s: %w", p, err)
	}
	return nil
}

// Get implements remote.Store.
func (s *Store) Get(_ context.Context, name string) ([]byte, error) {
	data, err := s.c.ReadFile(s.path(name))
	if err != nil {
		return nil, fmt.Errorf("hdfs get %s: %w", s.path(name), err)
	}
	return data, nil
}

// List implements remote.Store.
func (s *Store) List(_ context.Context, dir, after string) ([]string, error) {
	infos, err := s.c.ReadDir(s.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hdfs list %s: %w", s.path(dir), err)
	}
	var names []string
	for _, fi := range infos {
		if !fi.IsDir() && fi.Name()[0] != '.' && fi.Name() > after {
			names = append(names, fi.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
