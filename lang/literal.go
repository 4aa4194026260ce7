package lang

import (
	"errors"
	"math"
	"strconv"
)

// A params list written out in the job file ([{x: 1}, {x: 2}, ...]) is read by the small
// parser below instead of expr-lang when it holds only literals: expr-lang's tree, program and
// result cost hundreds of bytes for each byte of a long list, and this parser keeps nothing but
// the text. The lexer hands such a list over as one token, the checker validates it once, and
// Params.Each parses it again as it goes, one parameter set at a time. Anything it does not know
// (an expression, a # pointer, a single-quoted string) sends the list to expr-lang as before.

// errNotLiteral says the text is not a plain literal list; expr-lang reads it instead.
var errNotLiteral = errors.New("not a literal")

// literalList reads a list literal's elements one at a time.
type literalList struct {
	s   string
	off int
	// check: only check the text, building no values (the checker's pass)
	check bool
}

// eachLiteral calls fn with each element of the list literal text, in order; errNotLiteral when
// the text is not one.
func eachLiteral(text string, fn func(i int, v any) error) error {
	return (&literalList{s: text}).each(fn)
}

// countLiteral checks that text is a list literal, building no values, and counts its
// elements; errNotLiteral when it is not one.
func countLiteral(text string) (int, error) {
	n := 0
	err := (&literalList{s: text, check: true}).each(func(int, any) error { n++; return nil })
	return n, err
}

func (p *literalList) each(fn func(i int, v any) error) error {
	p.space()
	if !p.eat('[') {
		return errNotLiteral
	}
	for i := 0; ; i++ {
		p.space()
		if p.eat(']') {
			break
		}
		v, err := p.value(0)
		if err != nil {
			return err
		}
		if err := fn(i, v); err != nil {
			return err
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat(']') {
			return errNotLiteral
		}
		break
	}
	p.space()
	if p.off != len(p.s) {
		return errNotLiteral
	}
	return nil
}

func (p *literalList) eat(c byte) bool {
	if p.off < len(p.s) && p.s[p.off] == c {
		p.off++
		return true
	}
	return false
}

// space skips white space and // and /* */ comments.
func (p *literalList) space() {
	for p.off < len(p.s) {
		switch c := p.s[p.off]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			p.off++
		case c == '/' && p.off+1 < len(p.s) && p.s[p.off+1] == '/':
			for p.off < len(p.s) && p.s[p.off] != '\n' {
				p.off++
			}
		case c == '/' && p.off+1 < len(p.s) && p.s[p.off+1] == '*':
			end := indexFrom(p.s, "*/", p.off+2)
			if end < 0 {
				p.off = len(p.s)
				return
			}
			p.off = end + 2
		default:
			return
		}
	}
}

func indexFrom(s, sub string, from int) int {
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func (p *literalList) value(depth int) (any, error) {
	if depth > maxNesting {
		return nil, errNotLiteral
	}
	p.space()
	if p.off >= len(p.s) {
		return nil, errNotLiteral
	}
	switch c := p.s[p.off]; {
	case c == '{':
		p.off++
		var obj map[string]any
		if !p.check {
			obj = map[string]any{}
		}
		for {
			p.space()
			if p.eat('}') {
				return obj, nil
			}
			key, err := p.key()
			if err != nil {
				return nil, err
			}
			p.space()
			if !p.eat(':') {
				return nil, errNotLiteral
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if obj != nil {
				obj[key] = v
			}
			p.space()
			if p.eat(',') {
				continue
			}
			p.space()
			if !p.eat('}') {
				return nil, errNotLiteral
			}
			return obj, nil
		}
	case c == '[':
		p.off++
		var list []any
		if !p.check {
			list = []any{}
		}
		for {
			p.space()
			if p.eat(']') {
				return list, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if !p.check {
				list = append(list, v)
			}
			p.space()
			if p.eat(',') {
				continue
			}
			p.space()
			if !p.eat(']') {
				return nil, errNotLiteral
			}
			return list, nil
		}
	case c == '"':
		return p.str()
	case c == '-' || isDigit(c):
		return p.number()
	case isIdentStart(c):
		start := p.off
		for p.off < len(p.s) && isIdentChar(p.s[p.off]) {
			p.off++
		}
		switch p.s[start:p.off] {
		case "null", "nil":
			return nil, nil
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return nil, errNotLiteral
}

// key reads an object key: a name or a double-quoted string.
func (p *literalList) key() (string, error) {
	if p.off < len(p.s) && p.s[p.off] == '"' {
		v, err := p.str()
		if err != nil {
			return "", err
		}
		return v.(string), nil
	}
	start := p.off
	if p.off >= len(p.s) || !isIdentStart(p.s[p.off]) {
		return "", errNotLiteral
	}
	for p.off < len(p.s) && isIdentChar(p.s[p.off]) {
		p.off++
	}
	return p.s[start:p.off], nil
}

// str reads a double-quoted string with Go's escapes (expr-lang's).
func (p *literalList) str() (any, error) {
	start := p.off
	p.off++
	plain := true
	for p.off < len(p.s) {
		switch p.s[p.off] {
		case '\\':
			plain = false
			p.off += 2
			continue
		case '\n':
			return nil, errNotLiteral
		case '"':
			p.off++
			if plain {
				return p.s[start+1 : p.off-1], nil
			}
			v, err := strconv.Unquote(p.s[start:p.off])
			if err != nil {
				return nil, errNotLiteral
			}
			return v, nil
		}
		p.off++
	}
	return nil, errNotLiteral
}

// number reads an integer (an int) or a decimal number (a float64), as expr-lang does; other
// forms (hex, underscores, an int past int64) go to expr-lang.
func (p *literalList) number() (any, error) {
	start := p.off
	if p.s[p.off] == '-' {
		p.off++
	}
	digits := p.off
	for p.off < len(p.s) && isDigit(p.s[p.off]) {
		p.off++
	}
	if p.off == digits {
		return nil, errNotLiteral
	}
	isFloat := false
	if p.off < len(p.s) && p.s[p.off] == '.' && p.off+1 < len(p.s) && isDigit(p.s[p.off+1]) {
		isFloat = true
		p.off++
		for p.off < len(p.s) && isDigit(p.s[p.off]) {
			p.off++
		}
	}
	if p.off < len(p.s) && (p.s[p.off] == 'e' || p.s[p.off] == 'E') {
		isFloat = true
		p.off++
		if p.off < len(p.s) && (p.s[p.off] == '+' || p.s[p.off] == '-') {
			p.off++
		}
		exp := p.off
		for p.off < len(p.s) && isDigit(p.s[p.off]) {
			p.off++
		}
		if p.off == exp {
			return nil, errNotLiteral
		}
	}
	if p.off < len(p.s) && (isIdentChar(p.s[p.off]) || p.s[p.off] == '.') {
		return nil, errNotLiteral // 1_000, 0x10, 1.e5, 5s: expr-lang's to read
	}
	text := p.s[start:p.off]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, errNotLiteral
		}
		return f, nil
	}
	if len(text) > 1 && text[0] == '0' || len(text) > 2 && text[:2] == "-0" {
		return nil, errNotLiteral // a leading zero: expr-lang's to judge
	}
	n, err := strconv.ParseInt(text, 10, strconv.IntSize)
	if err != nil {
		return nil, errNotLiteral
	}
	return int(n), nil
}
