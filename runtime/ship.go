package runtime

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mapflow/mapflow/lang"
)

// ShippedFile is one file a job ships: Name is its slash path in a task's directory, Path where
// it is on this machine, Mode its permission bits.
type ShippedFile struct {
	Name string
	Path string
	Mode fs.FileMode
}

// ShippedFiles lists the files of the job's ship statements (a directory's files, walked),
// sorted by name.
func ShippedFiles(job *lang.Job) ([]ShippedFile, error) {
	var files []ShippedFile
	for _, s := range job.Ship {
		err := filepath.WalkDir(s.Abs, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(s.Abs, p)
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			name := filepath.ToSlash(filepath.Join(filepath.FromSlash(s.Path), rel))
			files = append(files, ShippedFile{Name: name, Path: p, Mode: info.Mode().Perm()})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("shipped %q: %w", s.Path, err)
		}
	}
	slices.SortFunc(files, func(a, b ShippedFile) int { return strings.Compare(a.Name, b.Name) })
	return files, nil
}
