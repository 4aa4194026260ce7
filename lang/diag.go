package lang

import (
	"fmt"
	"strings"
)

func posString(p Pos) string {
	name := p.Filename
	if name == "" {
		name = "<input>"
	}
	if p.Line == 0 {
		return name
	}
	if p.Column == 0 {
		return fmt.Sprintf("%s:%d", name, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", name, p.Line, p.Column)
}

// Severity tells errors from warnings.
type Severity int

// Severities.
const (
	Error Severity = iota
	Warning
)

// Diagnostic is one problem found in a job file: where, what, and how to fix it.
type Diagnostic struct {
	Severity Severity
	Pos      Pos
	Summary  string // short, lower-case: `unknown setting "worker" in env local`
	Detail   string // how to fix it, when there is something to say: "did you mean `workers`?"
}

// Error formats d on one line: file:line:col: summary (detail).
func (d Diagnostic) Error() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString(" (")
		b.WriteString(d.Detail)
		b.WriteString(")")
	}
	return b.String()
}

// Diagnostics is a list of problems; as an error it prints one line each.
type Diagnostics []Diagnostic

// Error formats ds one diagnostic a line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// HasErrors tells whether any diagnostic is an error rather than a warning.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Err returns ds as an error when it holds an error, else nil.
func (ds Diagnostics) Err() error {
	if ds.HasErrors() {
		return ds
	}
	return nil
}
