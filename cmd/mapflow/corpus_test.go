package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCheckCorpus runs `mapflow check` on every malformed job file of lang's corpus: each
// gets exit status 2 and error lines of the form file:line:col: message, never a Go stack
// trace.
func TestCheckCorpus(t *testing.T) {
	files, err := filepath.Glob("../../lang/testdata/errors/*.mf")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("the corpus has %d files, want at least 30", len(files))
	}
	lineRE := regexp.MustCompile(`^` + regexp.QuoteMeta("../../lang/testdata/errors/") + `[^:]+\.mf:\d+:\d+: \S`)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main([]string{"check", f}, &stdout, &stderr)
			if code != exitBadInput {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitBadInput, stderr.String())
			}
			out := stderr.String()
			if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic:") {
				t.Fatalf("a Go stack trace reached the user:\n%s", out)
			}
			first, _, _ := strings.Cut(out, "\n")
			if !lineRE.MatchString(first) {
				t.Errorf("first error line %q does not start with file:line:col: message", first)
			}
		})
	}
}
