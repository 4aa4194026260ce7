package lang

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var wantRe = regexp.MustCompile(`^# want: (\d+):(\d+): (.+?)\r?$`)

// TestErrorCorpus loads every file in testdata/errors. Each holds one problem and names it in
// its first line, `# want: LINE:COL: part of the message`; the first diagnostic must match.
func TestErrorCorpus(t *testing.T) {
	paths, err := filepath.Glob("testdata/errors/*.mf")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 35 {
		t.Errorf("only %d files in testdata/errors", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".mf"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bytes.Cut(src, []byte("\n"))
			m := wantRe.FindSubmatch(first)
			if m == nil {
				t.Fatalf("first line %q is not `# want: LINE:COL: message`", first)
			}
			_, err = Load(path)
			var ds Diagnostics
			if !errors.As(err, &ds) || len(ds) == 0 {
				t.Fatalf("Load: %v (%T), want Diagnostics", err, err)
			}
			d := ds[0]
			at := fmt.Sprintf("%d:%d", d.Pos.Line, d.Pos.Column)
			if want := string(m[1]) + ":" + string(m[2]); at != want || !strings.Contains(d.Error(), string(m[3])) {
				t.Errorf("first diagnostic\n  %s\nwant at %s: %s", d.Error(), want, m[3])
			}
			line := d.Error()
			if strings.Contains(line, "\n") || !strings.HasPrefix(line, path+":"+at+": ") {
				t.Errorf("Error() = %q, want one line starting %s:%s:", line, path, at)
			}
			if d.Summary == "" || d.Summary != strings.ToLower(d.Summary[:1])+d.Summary[1:] {
				t.Errorf("summary %q should start lower-case", d.Summary)
			}
			if testing.Verbose() {
				t.Logf("%s", ds.Error())
			}
		})
	}
}
