package lang

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// maxLine is the longest line a params file may have.
const maxLine = 64 << 20

// Each calls fn for every parameter set in order, streaming file sources. An error in the
// source (a bad line, an element that is not an object) names its file and line or the
// params statement's position. An error from fn stops the iteration and is returned as is.
func (p *Params) Each(fn func(index int, set map[string]any) error) error {
	return p.EachContext(context.Background(), fn)
}

// EachContext is Each that stops soon after ctx ends, within the evaluation of a params
// expression too (which then fails with Interrupted).
func (p *Params) EachContext(ctx context.Context, fn func(index int, set map[string]any) error) error {
	return p.each(ctx, func(index int, set map[string]any, _ Pos) error { return fn(index, set) })
}

// each is Each that also gives each set's position: the params statement, or the file line.
func (p *Params) each(ctx context.Context, fn func(index int, set map[string]any, pos Pos) error) error {
	if p == nil {
		return errors.New("no params")
	}
	switch p.Kind {
	case "list":
		return p.eachList(ctx, fn)
	case "grid":
		return p.eachGrid(ctx, fn)
	case "file":
		if strings.HasSuffix(strings.ToLower(p.File), ".csv") {
			return p.eachCSV(fn)
		}
		return p.eachJSONL(fn)
	}
	return fmt.Errorf("unknown params kind %q", p.Kind)
}

func (p *Params) eachList(ctx context.Context, fn func(int, map[string]any, Pos) error) error {
	each := func(i int, el any) error {
		set, ok := el.(map[string]any)
		if !ok {
			return Diagnostic{Pos: p.Pos, Summary: fmt.Sprintf("params element %d is %s, want an object like {x: 1}", i+1, article(valueType(el)))}
		}
		return fn(i, set, p.Pos)
	}
	if p.literal {
		return eachLiteral(p.Expr.Text, each)
	}
	if c := p.Expr.compiled; c != nil && c.stream != nil {
		if ok, err := p.Expr.eachStreamed(ctx, c.stream, each); ok {
			return err
		}
	}
	v, err := p.Expr.EvalContext(ctx, nil)
	if err != nil {
		return err
	}
	list, ok := v.([]any)
	if !ok {
		return Diagnostic{Pos: p.Pos, Summary: fmt.Sprintf("params must be a list of objects, got %s", valueType(v)), Detail: "write a list like [{x: 1}, {x: 2}]"}
	}
	for i, el := range list {
		list[i] = nil // let the sets already handed out be collected
		if err := each(i, el); err != nil {
			return err
		}
	}
	return nil
}

func article(t string) string {
	if t == "null" {
		return t
	}
	if strings.ContainsRune("aeiou", rune(t[0])) {
		return "an " + t
	}
	return "a " + t
}

func (p *Params) eachGrid(ctx context.Context, fn func(int, map[string]any, Pos) error) error {
	axes := make([][]any, len(p.Grid))
	for i, a := range p.Grid {
		v, err := a.Values.EvalContext(ctx, nil)
		if err != nil {
			return err
		}
		list, ok := v.([]any)
		if !ok {
			return Diagnostic{Pos: a.Pos, Summary: fmt.Sprintf("grid axis %q must be a list, got %s", a.Key, valueType(v)), Detail: "write the values as a list, like " + a.Key + ": [1, 2, 3]"}
		}
		if len(list) == 0 {
			return nil
		}
		axes[i] = list
	}
	if len(axes) == 0 {
		return nil
	}
	// An odometer: the last axis turns fastest, like nested loops.
	idx := make([]int, len(axes))
	for n := 0; ; n++ {
		set := make(map[string]any, len(axes))
		for i, a := range p.Grid {
			set[a.Key] = axes[i][idx[i]]
		}
		if err := fn(n, set, p.Pos); err != nil {
			return err
		}
		i := len(idx) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(axes[i]) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return nil
		}
	}
}

// Count is the number of parameter sets when it is known without making them: a streamed
// map(A..B, ...) (when its mapping keeps every element) or a grid. ok is false otherwise (a
// file, a list built whole).
func (p *Params) Count() (n int, ok bool) {
	if p == nil {
		return 0, false
	}
	switch p.Kind {
	case "list":
		if p.literal {
			return p.count, true
		}
		if c := p.Expr.compiled; c != nil && c.stream != nil {
			lo, hi, ok := p.Expr.streamBounds(c.stream)
			if !ok {
				return 0, false
			}
			if hi < lo {
				return 0, true
			}
			if span := uint64(hi) - uint64(lo); span < math.MaxInt { // the distance, without overflow
				return int(span) + 1, true
			}
			return 0, false // more sets than an int counts
		}
	case "grid":
		n = 1
		for _, a := range p.Grid {
			v, err := a.Values.Eval(nil)
			list, isList := v.([]any)
			if err != nil || !isList {
				return 0, false
			}
			if len(list) > 0 && n > math.MaxInt/len(list) {
				return 0, false
			}
			n *= len(list)
		}
		return n, len(p.Grid) > 0
	}
	return 0, false
}

// ValidateFile reads a params file whole, as the run will, and returns its first error (with
// the file and line), so that a bad line 50,001 is found before any task runs. It streams the
// file, holding one line at a time, and stops when ctx ends. It does nothing for other params.
func (p *Params) ValidateFile(ctx context.Context) error {
	if p == nil || p.Kind != "file" {
		return nil
	}
	n := 0
	stop := func() error {
		if n++; n%4096 == 0 {
			return ctx.Err()
		}
		return nil
	}
	var err error
	if strings.HasSuffix(strings.ToLower(p.File), ".csv") {
		err = p.eachCSVRecord(func([]string, int) error { return stop() })
	} else {
		err = p.eachJSONLine(func(text []byte, line int) error {
			// A line that is valid JSON and starts with { is one object: decodeObject
			// takes it. Checking so costs a tenth of decoding it.
			if text[0] != '{' || !json.Valid(text) || hasExponent(text) {
				if _, perr := decodeObject(text); perr != "" {
					return p.lineError(line, "%s", perr)
				}
			}
			return stop()
		})
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

func (p *Params) open() (*os.File, error) {
	f, err := os.Open(p.File)
	if err != nil {
		return nil, fmt.Errorf("params file: %w", err)
	}
	return f, nil
}

func (p *Params) lineError(line int, format string, args ...any) error {
	return Diagnostic{Pos: Pos{Filename: p.File, Line: line}, Summary: fmt.Sprintf(format, args...)}
}

func (p *Params) eachJSONL(fn func(int, map[string]any, Pos) error) error {
	n := 0
	return p.eachJSONLine(func(text []byte, line int) error {
		set, perr := decodeObject(text)
		if perr != "" {
			return p.lineError(line, "%s", perr)
		}
		if err := fn(n, set, Pos{Filename: p.File, Line: line}); err != nil {
			return err
		}
		n++
		return nil
	})
}

// eachJSONLine calls fn with each line of a .jsonl file that is not blank, trimmed.
func (p *Params) eachJSONLine(fn func(text []byte, line int) error) error {
	f, err := p.open()
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		text, err := readLine(r)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return p.lineError(line, "line is longer than %d MiB", maxLine>>20)
			}
			return fmt.Errorf("%s:%d: %w", p.File, line, err)
		}
		if text = bytes.TrimSpace(text); len(text) > 0 {
			if ferr := fn(text, line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line without its newline, up to maxLine bytes; io.EOF comes with the
// last line.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine+1 {
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimRight(buf, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return bytes.TrimRight(buf, "\r\n"), err
		}
	}
}

// decodeObject decodes one JSON object; integral numbers become int, others float64.
func decodeObject(text []byte) (map[string]any, string) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, "bad JSON: " + err.Error()
	}
	if dec.More() {
		return nil, "more than one JSON value on the line; write one object per line"
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "more than one JSON value on the line; write one object per line"
	}
	set, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Sprintf("line is %s, want a JSON object like {\"x\": 1}", article(valueType(normalizeJSON(v))))
	}
	set = normalizeJSON(set).(map[string]any)
	if hasInf(set) {
		return nil, "a number on the line is too large for a float (like 1e999)"
	}
	return set, ""
}

// hasInf tells whether v holds an infinity, which JSON cannot carry on to a task.
func hasInf(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsInf(x, 0)
	case []any:
		for _, e := range x {
			if hasInf(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasInf(e) {
				return true
			}
		}
	}
	return false
}

// hasExponent tells whether a line may hold a number with an exponent (a digit and then e or
// E), which json.Valid accepts however large it is.
func hasExponent(text []byte) bool {
	for i := 1; i < len(text); i++ {
		if (text[i] == 'e' || text[i] == 'E') && isDigit(text[i-1]) {
			return true
		}
	}
	return false
}

// normalizeJSON turns json.Numbers into int or float64, in place.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, strconv.IntSize); err == nil {
			return int(i)
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !math.IsInf(f, 0) {
			return string(x)
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
	}
	return v
}

func (p *Params) eachCSV(fn func(int, map[string]any, Pos) error) error {
	var keys []string
	n := 0
	return p.eachCSVRecordKeys(func(k []string) { keys = k }, func(rec []string, line int) error {
		set := make(map[string]any, len(keys))
		for i, field := range rec {
			set[keys[i]] = csvValue(field)
		}
		if err := fn(n, set, Pos{Filename: p.File, Line: line}); err != nil {
			return err
		}
		n++
		return nil
	})
}

// eachCSVRecord calls fn with each row of a .csv file after its header, checked against it.
func (p *Params) eachCSVRecord(fn func(rec []string, line int) error) error {
	return p.eachCSVRecordKeys(func([]string) {}, fn)
}

func (p *Params) eachCSVRecordKeys(gotKeys func([]string), fn func(rec []string, line int) error) error {
	f, err := p.open()
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return p.csvError(err)
	}
	keys := make([]string, len(header))
	for i, h := range header {
		keys[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if keys[i] == "" {
			return p.lineError(1, "header column %d has no name", i+1)
		}
		for _, prev := range keys[:i] {
			if prev == keys[i] {
				return p.lineError(1, "header names column %q twice", keys[i])
			}
		}
	}
	gotKeys(keys)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return p.csvError(err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(keys) {
			return p.lineError(line, "row has %d fields, the header has %d", len(rec), len(keys))
		}
		if err := fn(rec, line); err != nil {
			return err
		}
	}
}

func (p *Params) csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return p.lineError(pe.Line, "%v", pe.Err)
	}
	return fmt.Errorf("%s: %w", p.File, err)
}

// csvValue reads a CSV field: int, float, true/false, empty as null, else the string.
func csvValue(s string) any {
	switch s {
	case "":
		return nil
	case "true":
		return true
	case "false":
		return false
	}
	if i, err := strconv.ParseInt(s, 10, strconv.IntSize); err == nil {
		return int(i)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXnN_") {
		return f
	}
	return s
}

// Lint iterates the params (all of them) and warns once per key the function does not take
// and once per parameter some set lacks. An error in the params source is an error
// diagnostic.
func (j *Job) Lint() Diagnostics {
	ds, _ := j.LintSets(context.Background(), 0)
	return ds
}

// errLintStop ends a walk of the parameter sets early.
var errLintStop = errors.New("stop")

// LintSets is Lint over at most max parameter sets of a list or grid (0: all), stopping when
// ctx ends: such params may be unbounded (map(1..1000000000, ...)). A params file is read
// whole, since a file ends. It also says how many sets it saw.
func (j *Job) LintSets(ctx context.Context, max int) (Diagnostics, int) {
	var ds Diagnostics
	if j == nil || j.Func == nil || j.Params == nil {
		return ds, 0
	}
	seen := 0
	takes := make(map[string]bool, len(j.Func.Params))
	for _, p := range j.Func.Params {
		takes[p] = true
	}
	extra := map[string]bool{}
	missing := map[string]bool{}
	err := j.Params.each(ctx, func(_ int, set map[string]any, pos Pos) error {
		if ctx.Err() != nil || (max > 0 && seen >= max && j.Params.Kind != "file") {
			return errLintStop
		}
		seen++
		for k := range set {
			if !takes[k] && !extra[k] {
				extra[k] = true
				ds = append(ds, Diagnostic{Severity: Warning, Pos: pos,
					Summary: fmt.Sprintf("parameter sets have key %q, which func %s does not take", k, j.Func.Name),
					Detail:  "it is ignored; the function takes " + strings.Join(j.Func.Params, ", ")})
			}
		}
		for _, p := range j.Func.Params {
			if _, ok := set[p]; !ok && !missing[p] {
				missing[p] = true
				ds = append(ds, Diagnostic{Severity: Warning, Pos: pos,
					Summary: fmt.Sprintf("a parameter set lacks %q", p),
					Detail:  "this set will fail with KeyError"})
			}
		}
		return nil
	})
	if err == errLintStop || (err != nil && ctx.Err() != nil) {
		err = ctx.Err() // an evaluation that ctx stopped is a stop too
	}
	if err != nil {
		var d Diagnostic
		var ee *EvalError
		switch {
		case errors.Is(err, context.Canceled):
			ds = append(ds, Diagnostic{Pos: j.Params.Pos, Summary: fmt.Sprintf("interrupted after %d parameter sets", seen)})
		case errors.As(err, &d):
			ds = append(ds, d)
		case errors.As(err, &ee):
			ds = append(ds, Diagnostic{Pos: ee.Pos, Summary: fmt.Sprintf("params: %s: %s", ee.Exception, ee.Message)})
		default:
			ds = append(ds, Diagnostic{Pos: j.Params.Pos, Summary: err.Error()})
		}
	}
	return ds, seen
}

// DefaultEnv returns the env named name, or the default (first) env when name is "".
func (j *Job) DefaultEnv(name string) (*Env, error) {
	if len(j.Envs) == 0 {
		return nil, fmt.Errorf("%w: the job has none", ErrUnknownEnv)
	}
	if name == "" {
		return j.Envs[0], nil
	}
	names := make([]string, len(j.Envs))
	for i, e := range j.Envs {
		if e.Name == name {
			return e, nil
		}
		names[i] = e.Name
	}
	return nil, fmt.Errorf("%w %q (%s declares %s)", ErrUnknownEnv, name, j.Filename, strings.Join(names, ", "))
}

// ErrUnknownEnv is returned by DefaultEnv for a name the job file does not declare.
var ErrUnknownEnv = errors.New("unknown env")
