package lang

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// File is a parsed job file (the syntax tree). Its nodes are internal; Check turns it into
// a Job.
type File struct {
	Filename string // as given to Parse; positions carry it
	Source   []byte

	syntax *fileSyntax
}

// Load reads, parses and checks the job file at path. Its error is a Diagnostics.
func Load(path string) (*Job, error) {
	src, err := readJobFile(path)
	if err != nil {
		return nil, Diagnostics{{Pos: Pos{Filename: path}, Summary: fmt.Sprintf("cannot read job file: %v", unwrapPathError(err))}}
	}
	f, err := Parse(path, src)
	if err != nil {
		return nil, err
	}
	return Check(f)
}

// MaxJobFile bounds a job file's size; parameter sets by the million belong in a params file,
// which is streamed.
const MaxJobFile = 64 << 20

// readJobFile reads a job file that is a regular file of at most MaxJobFile bytes: a FIFO or a
// device would block or never end.
func readJobFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		what := "not a regular file"
		switch {
		case st.IsDir():
			what = "a directory"
		case st.Mode()&os.ModeNamedPipe != 0:
			what = "a named pipe (FIFO)"
		case st.Mode()&os.ModeDevice != 0:
			what = "a device"
		}
		return nil, fmt.Errorf("it is %s; name a .mf file", what)
	}
	if st.Size() > MaxJobFile {
		return nil, fmt.Errorf("it is %d MiB, more than the %d MiB a job file may be; put parameter sets in a params file (params file \"sets.jsonl\")", st.Size()>>20, MaxJobFile>>20)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxJobFile+1))
	if err == nil && len(src) > MaxJobFile {
		err = fmt.Errorf("it is more than the %d MiB a job file may be", MaxJobFile>>20)
	}
	return src, err
}

// unwrapPathError drops the path from an *os.PathError, which the position already names.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse parses a job file's text; filename is used in positions only. Its error is a
// Diagnostics.
func Parse(filename string, src []byte) (*File, error) {
	toks, err := lexAll(filename, src)
	if err != nil {
		return nil, Diagnostics{syntaxDiagnostic(filename, err, nil)}
	}
	pl, err := lexer.Upgrade(&tokenList{toks: toks})
	if err != nil {
		return nil, Diagnostics{syntaxDiagnostic(filename, err, toks)}
	}
	syn, err := parser.ParseFromLexer(pl)
	if err != nil {
		return nil, Diagnostics{syntaxDiagnostic(filename, err, toks)}
	}
	f := &File{Filename: filename, Source: src, syntax: syn}
	f.fillTexts()
	return f, nil
}

// syntaxDiagnostic turns a lexer or parser error into a Diagnostic in the language's words.
// toks, when lexing succeeded, tell which statement the error is in, to show its form.
func syntaxDiagnostic(filename string, err error, toks []lexer.Token) Diagnostic {
	d := syntaxDiagnostic1(err, toks)
	if d.Pos.Line < 1 {
		d.Pos = Pos{Filename: filename, Line: 1, Column: 1}
	}
	return d
}

// statementForms show how each statement is written.
var statementForms = map[string]string{
	"job":     `job NAME or job "NAME"`,
	"env":     "env KIND [NAME] { key = value ... }",
	"func":    "func NAME(P1, P2, ...) = EXPRESSION",
	"ship":    `ship "path", "path", ...`,
	"params":  `params EXPRESSION, params grid { key: [values], ... } or params file "sets.jsonl"`,
	"combine": "combine EXPRESSION",
	"retries": "retries N",
	"timeout": "timeout DURATION, like 30s",
	"recycle": "recycle N (tasks per warm worker process)",
	"cache":   "cache, or cache false",
}

func syntaxDiagnostic1(err error, toks []lexer.Token) Diagnostic {
	var le *lexError
	if errors.As(err, &le) {
		return Diagnostic{Pos: Pos(le.pos), Summary: le.msg, Detail: le.detail}
	}
	var pe participle.Error
	if !errors.As(err, &pe) {
		return Diagnostic{Summary: err.Error()}
	}
	pos := pe.Position()
	d := Diagnostic{Pos: Pos(pos), Summary: pe.Message()}
	var ute *participle.UnexpectedTokenError
	if errors.As(err, &ute) {
		d.Summary = "unexpected " + describeToken(ute.Unexpected)
	}
	var parts []string
	if msg := pe.Message(); strings.HasSuffix(msg, ")") {
		if i := strings.Index(msg, " (expected "); i > 0 {
			if exp := describeExpected(msg[i+len(" (expected ") : len(msg)-1]); exp != "" {
				parts = append(parts, "expected "+exp)
			}
		}
	}
	kw := ""
	for _, t := range toks {
		if t.Pos.Offset > pos.Offset {
			break
		}
		if t.Type == tokKeyword {
			kw = t.Value
		}
	}
	if form := statementForms[kw]; form != "" {
		parts = append(parts, "write "+form)
	}
	d.Detail = strings.Join(parts, "; ")
	return d
}

func describeToken(t lexer.Token) string {
	switch {
	case t.EOF():
		return "end of file"
	case t.Type == tokNewline:
		return "end of line"
	case t.Type == tokOther:
		return fmt.Sprintf("character %q", t.Value)
	case t.Type == tokString:
		return "string " + t.Value
	}
	return fmt.Sprintf("%q", t.Value)
}

// describeExpected names the first thing participle's expected grammar fragment wants, or "".
func describeExpected(s string) string {
	s = strings.TrimLeft(s, "( ")
	switch {
	case strings.HasPrefix(s, `"grid"`):
		return "an expression"
	case strings.HasPrefix(s, `"`):
		if end := strings.Index(s[1:], `"`); end >= 0 {
			lit := s[:end+2]
			if lit == `"\n"` {
				return "end of line"
			}
			return lit
		}
	case strings.HasPrefix(s, "<newline>"):
		return "end of line"
	case strings.HasPrefix(s, "Ident"), strings.HasPrefix(s, "<ident>"):
		return "a name"
	case strings.HasPrefix(s, "StringLit"), strings.HasPrefix(s, "<string>"):
		return "a quoted string"
	case strings.HasPrefix(s, "ExprNode"), strings.HasPrefix(s, "ExprGroup"):
		return "an expression"
	case strings.HasPrefix(s, "Value"), strings.HasPrefix(s, "<int>"):
		return "a value"
	}
	return ""
}

// fillTexts cuts every expression's text from the source.
func (f *File) fillTexts() {
	for _, st := range f.syntax.Stmts {
		var es []*exprNode
		switch {
		case st.Func != nil:
			es = append(es, st.Func.Body)
		case st.Params != nil && st.Params.Expr != nil:
			es = append(es, st.Params.Expr)
		case st.Combine != nil:
			es = append(es, st.Combine.Expr)
		}
		for _, e := range es {
			f.fillText(e)
		}
	}
}

func (f *File) fillText(e *exprNode) {
	if e != nil && len(e.Parts) > 0 {
		end := e.Parts[len(e.Parts)-1].end()
		if e.Pos.Offset >= 0 && end >= e.Pos.Offset && end <= len(f.Source) {
			e.text = string(f.Source[e.Pos.Offset:end])
		}
	}
}

// Token is a token of a job file as written.
type Token struct {
	Value string
	Pos   Pos
}

// FuncSyntax is a parsed file's func statement as written, for comparing two versions of a job.
type FuncSyntax struct {
	Name   string
	Params []string
	Pos    Pos
	Body   []Token // without comments and layout
}

// Func is the file's first func statement as written, or nil when it has none.
func (f *File) Func() *FuncSyntax {
	if f == nil || f.syntax == nil {
		return nil
	}
	for _, st := range f.syntax.Stmts {
		if fs := st.Func; fs != nil && fs.Name != nil && fs.Body != nil {
			out := &FuncSyntax{Name: fs.Name.Name, Pos: st.Pos, Body: fs.Body.tokens()}
			for _, p := range fs.Params {
				out.Params = append(out.Params, p.Name)
			}
			return out
		}
	}
	return nil
}

// canon is the expression's tokens one space apart, without its comments and layout.
func (e *exprNode) canon() string {
	var b strings.Builder
	for i, t := range e.tokens() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.Value)
	}
	return b.String()
}

// tokens are the expression's tokens in order.
func (e *exprNode) tokens() []Token {
	if e == nil {
		return nil
	}
	var toks []Token
	var group func(g *exprGroup)
	group = func(g *exprGroup) {
		toks = append(toks, Token{g.Open, g.Pos})
		for _, it := range g.Inner {
			switch {
			case it.Group != nil:
				group(it.Group)
			case it.Tok != nil:
				toks = append(toks, Token{it.Tok.Value, it.Tok.Pos})
			case it.Comma != nil:
				toks = append(toks, Token{it.Comma.Value, it.Comma.Pos})
			}
		}
		if g.Close != nil {
			toks = append(toks, Token{g.Close.Value, g.Close.Pos})
		}
	}
	for _, p := range e.Parts {
		if p.Group != nil {
			group(p.Group)
		} else if p.Tok != nil {
			toks = append(toks, Token{p.Tok.Value, p.Tok.Pos})
		}
	}
	return toks
}

func (p *exprPart) end() int {
	if p.Group != nil {
		return p.Group.end()
	}
	return p.Tok.Pos.Offset + len(p.Tok.Value)
}

func (g *exprGroup) end() int { return g.Close.Pos.Offset + len(g.Close.Value) }
