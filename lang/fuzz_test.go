package lang

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse and Check: they must never panic, and every
// diagnostic must point at a line.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/good/*.mf", "testdata/errors/*.mf"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("testdata/fuzz.mf", src)
		if err != nil {
			checkDiagnostics(t, err)
			return
		}
		job, err := Check(file)
		if err != nil {
			checkDiagnostics(t, err)
			return
		}
		checkDiagnostics(t, job.Warnings)
		if job.Func == nil || job.Params == nil || len(job.Envs) == 0 {
			t.Fatalf("checked job lacks func, params or env: %+v", job)
		}
	})
}

func checkDiagnostics(t *testing.T, err error) {
	t.Helper()
	ds, ok := err.(Diagnostics)
	if !ok {
		t.Fatalf("error %v is a %T, want Diagnostics", err, err)
	}
	for _, d := range ds {
		if d.Pos.Line < 1 || d.Pos.Column < 1 {
			t.Fatalf("diagnostic without a position: %q", d.Error())
		}
	}
}
