package lang

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// The lexer is written by hand rather than with participle's stateful lexer because what a
// character means depends on where it is: `#` starts a comment at the top level and inside env
// blocks but is expr-lang's element pointer inside an expression's brackets, and newlines end
// statements only outside brackets. A bracket stack answers both questions. The lexer also
// checks that brackets balance, so the grammar can treat an expression as a balanced run of
// tokens. Whitespace and comments are dropped; every token's Value is its exact source text.

// Token types, as named in the grammar.
const (
	tokNewline lexer.TokenType = -(iota + 2)
	tokKeyword                 // a statement keyword at the start of a logical line
	tokIdent
	tokInt
	tokFloat
	tokDuration
	tokString
	tokPointer // expr-lang's # pointer: #, #index, #acc
	tokPunct   // an operator character
	tokBracket // ( ) [ ] { }
	tokComma
	tokOther // anything else (non-ASCII, control characters); left for the grammar to refuse
	// tokListLit is a whole bracketed list right after `params`, as one token: a list of a
	// million parameter sets would otherwise be millions of tokens and syntax nodes.
	tokListLit
)

// tokenSymbols is a function, not a variable: the package-level parser is built during
// package initialisation, which does not see the dependency through the interface.
func tokenSymbols() map[string]lexer.TokenType {
	return map[string]lexer.TokenType{
		"EOF":      lexer.EOF,
		"Newline":  tokNewline,
		"Keyword":  tokKeyword,
		"Ident":    tokIdent,
		"Int":      tokInt,
		"Float":    tokFloat,
		"Duration": tokDuration,
		"String":   tokString,
		"Pointer":  tokPointer,
		"Punct":    tokPunct,
		"Bracket":  tokBracket,
		"Comma":    tokComma,
		"Other":    tokOther,
		"ListLit":  tokListLit,
	}
}

// keywords are the statement keywords; they are keywords only as a line's first token.
var keywords = []string{"job", "env", "func", "ship", "params", "combine", "retries", "timeout", "recycle", "cache"}

func isKeyword(s string) bool {
	for _, k := range keywords {
		if k == s {
			return true
		}
	}
	return false
}

// lexDef is the participle lexer definition.
type lexDef struct{}

func (lexDef) Symbols() map[string]lexer.TokenType { return tokenSymbols() }

func (d lexDef) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filename, err)
	}
	return d.LexBytes(filename, b)
}

func (lexDef) LexBytes(filename string, src []byte) (lexer.Lexer, error) {
	toks, err := lexAll(filename, src)
	if err != nil {
		return nil, err
	}
	return &tokenList{toks: toks}, nil
}

// tokenList replays tokens lexed ahead of parsing.
type tokenList struct {
	toks []lexer.Token
	i    int
}

func (l *tokenList) Next() (lexer.Token, error) {
	if l.i >= len(l.toks) {
		return l.toks[len(l.toks)-1], nil
	}
	t := l.toks[l.i]
	l.i++
	return t, nil
}

// lexError is a lexing failure at a position; it satisfies participle.Error.
type lexError struct {
	msg    string
	detail string
	pos    lexer.Position
}

func (e *lexError) Error() string            { return posString(Pos(e.pos)) + ": " + e.msg }
func (e *lexError) Message() string          { return e.msg }
func (e *lexError) Position() lexer.Position { return e.pos }

// maxNesting bounds bracket nesting, so that no parser recurses without limit.
const maxNesting = 200

type openBracket struct {
	ch  byte
	pos lexer.Position
	env bool // inside an env block: # starts a comment and there are no expressions
	// list: the `[` right after `params`; what it holds becomes one tokListLit
	list bool
}

type scanner struct {
	filename string
	src      []byte
	off      int
	line     int
	col      int
	stack    []openBracket
	toks     []lexer.Token
	// lineStart is true until the first token of a logical line; envLine is true when that
	// token was the `env` keyword, so the line's `{` opens an env block.
	lineStart bool
	envLine   bool
	// inList is true inside a params list that becomes one token: nothing in it is emitted.
	inList bool
}

func (s *scanner) pos() lexer.Position {
	return lexer.Position{Filename: s.filename, Offset: s.off, Line: s.line, Column: s.col}
}

// advance moves over n bytes that contain no newline.
func (s *scanner) advance(n int) {
	s.off += n
	s.col += n
}

func (s *scanner) errorf(p lexer.Position, detail, format string, args ...any) error {
	return &lexError{msg: fmt.Sprintf(format, args...), detail: detail, pos: p}
}

func (s *scanner) emit(typ lexer.TokenType, start lexer.Position) {
	if s.inList {
		return
	}
	v := string(s.src[start.Offset:s.off])
	if typ == tokIdent && s.lineStart && len(s.stack) == 0 && isKeyword(v) {
		typ = tokKeyword
		s.envLine = v == "env"
	}
	if typ != tokNewline {
		s.lineStart = false
	}
	s.toks = append(s.toks, lexer.Token{Type: typ, Value: v, Pos: start})
}

// afterParams tells whether the last token is the `params` keyword.
func (s *scanner) afterParams() bool {
	n := len(s.toks)
	return n > 0 && s.toks[n-1].Type == tokKeyword && s.toks[n-1].Value == "params"
}

// mode tells how the innermost open bracket treats `#` and newlines.
func (s *scanner) mode() (top, env bool) {
	if len(s.stack) == 0 {
		return true, false
	}
	return false, s.stack[len(s.stack)-1].env
}

func lexAll(filename string, src []byte) ([]lexer.Token, error) {
	s := &scanner{filename: filename, src: src, line: 1, col: 1, lineStart: true}
	if err := s.run(); err != nil {
		return nil, err
	}
	// A final Newline lets every statement end with one.
	end := s.pos()
	if len(s.toks) == 0 || s.toks[len(s.toks)-1].Type != tokNewline {
		s.toks = append(s.toks, lexer.Token{Type: tokNewline, Value: "", Pos: end})
	}
	s.toks = append(s.toks, lexer.EOFToken(end))
	// A long run of operators (----1, not not not x) makes expr-lang's parser recurse once for
	// each: a million of them overflow its stack.
	run := 0
	for _, t := range s.toks {
		if t.Type == tokPunct || (t.Type == tokIdent && t.Value == "not") {
			if run++; run > maxOperatorRun {
				return nil, &lexError{msg: fmt.Sprintf("more than %d operators in a row", maxOperatorRun), detail: "write the expression another way", pos: t.Pos}
			}
			continue
		}
		run = 0
	}
	return s.toks, nil
}

// maxOperatorRun bounds a run of operator tokens.
const maxOperatorRun = 1000

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) run() error {
	for s.off < len(s.src) {
		c := s.src[s.off]
		top, env := s.mode()
		start := s.pos()
		switch {
		case c == '\n':
			s.off++
			s.line++
			s.col = 1
			if len(s.stack) == 0 || (env && s.stack[len(s.stack)-1].ch == '{') {
				s.toks = append(s.toks, lexer.Token{Type: tokNewline, Value: "\n", Pos: start})
				if len(s.stack) == 0 {
					s.lineStart = true
					s.envLine = false
				}
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			s.advance(1)
		case c == '#' && (top || env):
			s.skipLine()
		case c == '#':
			s.advance(1)
			for s.off < len(s.src) && isIdentChar(s.src[s.off]) {
				s.advance(1)
			}
			s.emit(tokPointer, start)
		case c == '/' && !top && !env && s.peek(1) == '/':
			s.skipLine()
		case c == '/' && !top && !env && s.peek(1) == '*':
			if err := s.blockComment(); err != nil {
				return err
			}
		case c == '"' || c == '\'' || c == '`':
			if err := s.str(c); err != nil {
				return err
			}
			s.emit(tokString, start)
		case isDigit(c) || (c == '.' && isDigit(s.peek(1)) && !s.prevIsDot()):
			s.emit(s.number(), start)
		case isIdentStart(c):
			for s.off < len(s.src) && isIdentChar(s.src[s.off]) {
				s.advance(1)
			}
			s.emit(tokIdent, start)
		case (c == '(' || c == '[' || c == '{') && len(s.stack) >= maxNesting:
			return s.errorf(start, "flatten the expression", "brackets nested too deeply (more than %d)", maxNesting)
		case c == '(' || c == '[' || c == '{':
			inEnv := env || (c == '{' && top && s.envLine)
			list := c == '[' && top && s.afterParams()
			s.stack = append(s.stack, openBracket{ch: c, pos: start, env: inEnv, list: list})
			s.advance(1)
			s.inList = s.inList || list
			s.emit(tokBracket, start)
		case c == ')' || c == ']' || c == '}':
			if len(s.stack) == 0 {
				return s.errorf(start, "remove it, or add the opening bracket it closes", "unbalanced brackets: %q closes nothing", string(c))
			}
			open := s.stack[len(s.stack)-1]
			if closer(open.ch) != c {
				return s.errorf(start, fmt.Sprintf("the %q opened at %d:%d needs a %q first", string(open.ch), open.pos.Line, open.pos.Column, string(closer(open.ch))),
					"unbalanced brackets: %q does not close %q", string(c), string(open.ch))
			}
			s.stack = s.stack[:len(s.stack)-1]
			s.advance(1)
			if open.list {
				s.inList = false
				s.emit(tokListLit, open.pos)
				break
			}
			s.emit(tokBracket, start)
		case c == ',':
			s.advance(1)
			s.emit(tokComma, start)
		case c < utf8.RuneSelf && strings.IndexByte("+-*/%<>=!&|^?:.;~@$\\", c) >= 0:
			s.advance(1)
			s.emit(tokPunct, start)
		default:
			_, n := utf8.DecodeRune(s.src[s.off:])
			s.advance(n)
			s.emit(tokOther, start)
		}
	}
	if len(s.stack) > 0 {
		open := s.stack[len(s.stack)-1]
		return s.errorf(open.pos, fmt.Sprintf("add the closing %q", string(closer(open.ch))), "unbalanced brackets: %q is never closed", string(open.ch))
	}
	return nil
}

func closer(open byte) byte {
	switch open {
	case '(':
		return ')'
	case '[':
		return ']'
	}
	return '}'
}

func (s *scanner) peek(n int) byte {
	if s.off+n < len(s.src) {
		return s.src[s.off+n]
	}
	return 0
}

// prevIsDot keeps `1..5` from lexing `.5` as a number.
func (s *scanner) prevIsDot() bool { return s.off > 0 && s.src[s.off-1] == '.' }

func (s *scanner) skipLine() {
	for s.off < len(s.src) && s.src[s.off] != '\n' {
		s.advance(1)
	}
}

func (s *scanner) blockComment() error {
	start := s.pos()
	s.advance(2)
	for s.off < len(s.src) {
		if s.src[s.off] == '*' && s.peek(1) == '/' {
			s.advance(2)
			return nil
		}
		if s.src[s.off] == '\n' {
			s.off++
			s.line++
			s.col = 1
			continue
		}
		s.advance(1)
	}
	return s.errorf(start, "close it with */", "unterminated comment")
}

// str scans a quoted string. Double- and single-quoted strings end at the line's end;
// backquoted ones may span lines, as in expr-lang.
func (s *scanner) str(q byte) error {
	start := s.pos()
	s.advance(1)
	for s.off < len(s.src) {
		c := s.src[s.off]
		switch {
		case c == q:
			s.advance(1)
			return nil
		case c == '\\' && q != '`' && s.off+1 < len(s.src) && s.src[s.off+1] != '\n':
			s.advance(2)
		case c == '\n' && q != '`':
			return s.errorf(start, fmt.Sprintf("close it with %c on the same line", q), "unterminated string")
		case c == '\n':
			s.off++
			s.line++
			s.col = 1
		default:
			s.advance(1)
		}
	}
	return s.errorf(start, fmt.Sprintf("close it with %c", q), "unterminated string")
}

// number scans an int, a float or a duration such as 30s, 1.5m or 1h30m.
func (s *scanner) number() lexer.TokenType {
	typ := tokInt
	if s.src[s.off] == '0' && (s.peek(1) == 'x' || s.peek(1) == 'X') {
		s.advance(2)
		for s.off < len(s.src) && (isHex(s.src[s.off]) || s.src[s.off] == '_') {
			s.advance(1)
		}
		return tokInt
	}
	s.digits()
	if s.off < len(s.src) && s.src[s.off] == '.' && isDigit(s.peek(1)) {
		typ = tokFloat
		s.advance(1)
		s.digits()
	}
	if s.off < len(s.src) && (s.src[s.off] == 'e' || s.src[s.off] == 'E') {
		n := 1
		if s.peek(1) == '+' || s.peek(1) == '-' {
			n = 2
		}
		if isDigit(s.peek(n)) {
			typ = tokFloat
			s.advance(n)
			s.digits()
		}
	}
	if typ == tokFloat && !(s.off < len(s.src) && isIdentStart(s.src[s.off])) {
		return typ
	}
	// A duration: number unit (number unit)*.
	for {
		n := durationUnit(s.src[s.off:])
		if n == 0 {
			return typ
		}
		s.advance(n)
		typ = tokDuration
		if !(s.off < len(s.src) && isDigit(s.src[s.off])) {
			return typ
		}
		s.digits()
		if s.off < len(s.src) && s.src[s.off] == '.' && isDigit(s.peek(1)) {
			s.advance(1)
			s.digits()
		}
	}
}

func (s *scanner) digits() {
	for s.off < len(s.src) && (isDigit(s.src[s.off]) || s.src[s.off] == '_') {
		s.advance(1)
	}
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// durationUnit returns the length of the time unit at the start of b, if one is there and is
// not the start of a longer identifier.
func durationUnit(b []byte) int {
	for _, u := range []string{"ns", "us", "µs", "ms", "s", "m", "h"} {
		if len(b) >= len(u) && string(b[:len(u)]) == u {
			if len(b) > len(u) && isIdentChar(b[len(u)]) && !isDigit(b[len(u)]) {
				continue
			}
			return len(u)
		}
	}
	return 0
}
