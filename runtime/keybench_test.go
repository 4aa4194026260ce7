package runtime

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mapflow/mapflow/lang"
)

// BenchmarkCacheKey is one task's key for the 1M job's function and params.
func BenchmarkCacheKey(b *testing.B) {
	path := filepath.Join(b.TempDir(), "job.mf")
	if err := os.WriteFile(path, []byte("job a\nfunc add(x, y) = x + y\nparams [{x: 1, y: 1}]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	job, err := lang.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	k, err := NewCacheKeyer(job)
	if err != nil {
		b.Fatal(err)
	}
	set := map[string]any{"x": 123456, "y": 123456}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Key(set); err != nil {
			b.Fatal(err)
		}
	}
}
