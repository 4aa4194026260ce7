package lang

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mapflow/mapflow/settings"
)

// reserved are names a function parameter may not take: they are literals or the combiner's
// variables.
var reserved = []string{"null", "nil", "true", "false", "results", "tasks"}

type checker struct {
	f     *File
	dir   string // the job file's directory, absolute when it can be made so
	diags Diagnostics
	warns Diagnostics
	job   *Job
	first map[string]Pos // the first statement of each kind that may appear once
	// misspelled holds the keywords that unknown statements were taken for.
	misspelled map[string]bool
	// staged: the job's files are not beside the job file (a remote worker), so none is
	// looked for.
	staged bool
	// implicitShips are the Python files of python(...) calls, shipped without a ship line.
	implicitShips []Ship
	// unshippedArgs are serve(...) calls, whose file arguments should be shipped.
	unshippedArgs []*Warm
}

func (c *checker) errorf(pos Pos, detail, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Severity: Error, Pos: pos, Summary: fmt.Sprintf(format, args...), Detail: detail})
}

func (c *checker) warnf(pos Pos, detail, format string, args ...any) {
	c.warns = append(c.warns, Diagnostic{Severity: Warning, Pos: pos, Summary: fmt.Sprintf(format, args...), Detail: detail})
}

// Check validates a parsed file and compiles its expressions. Relative paths (ship, params
// files) resolve against the file's directory. Its error is a Diagnostics holding every
// problem found; warnings are in Job.Warnings.
func Check(f *File) (*Job, error) { return check(f, false) }

// CheckStaged checks a job file whose shipped and params files are not beside it: on a remote
// worker, which runs tasks the driver planned and finds the shipped files in its staging
// directory. It reports what Check does, except for files it cannot look at.
func CheckStaged(f *File) (*Job, error) { return check(f, true) }

func check(f *File, staged bool) (*Job, error) {
	if f == nil || f.syntax == nil {
		return nil, Diagnostics{{Summary: "nothing to check: the file was not parsed"}}
	}
	dir := filepath.Dir(f.Filename)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c := &checker{f: f, dir: dir, first: map[string]Pos{}, misspelled: map[string]bool{}, staged: staged}
	name := defaultJobName(f.Filename)
	c.job = &Job{Name: name, Filename: f.Filename, Source: f.Source}

	// The func comes first: params and lint warnings need its parameter names.
	for _, st := range f.syntax.Stmts {
		if st.Func != nil && c.once("func", st.Pos) {
			c.checkFunc(st.Func)
		}
	}
	for _, st := range f.syntax.Stmts {
		switch {
		case st.Job != nil:
			if c.once("job", st.Pos) {
				c.checkJob(st.Job)
			}
		case st.Env != nil:
			c.checkEnv(st.Env)
		case st.Func != nil:
		case st.Ship != nil:
			c.checkShip(st.Ship)
		case st.Params != nil:
			if c.once("params", st.Pos) {
				c.checkParams(st.Params)
			}
		case st.Combine != nil:
			if c.once("combine", st.Pos) {
				c.job.Combine = c.compile(st.Combine.Expr, kindCombine, nil)
			}
		case st.Retries != nil:
			if c.once("retries", st.Pos) {
				c.checkRetries(st.Retries)
			}
		case st.Timeout != nil:
			if c.once("timeout", st.Pos) {
				c.checkTimeout(st.Timeout)
			}
		case st.Recycle != nil:
			if c.once("recycle", st.Pos) {
				c.checkRecycle(st.Recycle)
			}
		case st.Cache != nil:
			if c.once("cache", st.Pos) {
				c.checkCache(st.Cache)
			}
		case st.Unknown != nil:
			c.unknownStmt(st.Unknown)
		}
	}
	c.job.Ship = mergeShips(c.job.Ship, c.implicitShips)
	c.warnUnshipped()
	if c.job.Recycle > 0 && c.job.Func != nil && c.job.Func.WarmFunc() == nil {
		c.warnf(c.first["recycle"], "recycle restarts the worker processes of python(...) and serve(...) functions", "recycle has no effect on func %s", c.job.Func.Name)
	}
	sortDiagnostics(c.diags)
	// A missing statement is reported at the file's start but after the other problems: one
	// of those (a misspelled keyword, a syntax error) is often its cause.
	start := Pos{Filename: f.Filename, Offset: 0, Line: 1, Column: 1}
	if _, ok := c.first["func"]; !ok && !c.misspelled["func"] {
		c.errorf(start, "add one, like: func add(x, y) = x + y", "missing func statement")
	}
	if _, ok := c.first["params"]; !ok && !c.misspelled["params"] {
		c.errorf(start, "add one, like: params [{x: 1, y: 2}, {x: 3, y: 4}]", "missing params statement")
	}
	if len(c.job.Envs) == 0 {
		// A job file without env blocks runs as with `env local {}`.
		env := &Env{Kind: "local", Name: "local", Pos: start, Settings: map[string]Setting{}}
		if k, ok := settings.Lookup(env.Kind); ok {
			env.Options, _ = k.Decode(nil, settings.Source{File: start.Filename, Block: start.String(), Env: env.Name})
		}
		c.job.Envs = []*Env{env}
	}
	sortDiagnostics(c.warns)
	c.job.Warnings = c.warns
	if len(c.diags) > 0 {
		return nil, append(c.diags, c.warns...)
	}
	return c.job, nil
}

func sortDiagnostics(ds Diagnostics) {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int { return a.Pos.Offset - b.Pos.Offset })
}

// once records the first statement of a kind and reports any later one.
func (c *checker) once(kind string, pos Pos) bool {
	if p, ok := c.first[kind]; ok {
		c.errorf(pos, fmt.Sprintf("a job file has one %s statement; the first is at %d:%d", kind, p.Line, p.Column), "duplicate %s statement", kind)
		return false
	}
	c.first[kind] = pos
	return true
}

func (c *checker) checkJob(j *jobStmt) {
	if j.Name != nil {
		if !validJobName(j.Name.Name) {
			c.errorf(j.Name.Pos, "a job name is up to 100 letters, digits, _, - and .", "job name %.20q... is too long", j.Name.Name)
			return
		}
		c.job.Name = j.Name.Name
		return
	}
	name, err := unquote(j.NameStr.Value)
	switch {
	case err != nil:
		c.errorf(j.NameStr.Pos, "", "bad string: %v", err)
	case strings.TrimSpace(name) == "" || strings.ContainsAny(name, "\n\r\t"):
		c.errorf(j.NameStr.Pos, `write a name, like job add or job "add-test"`, "bad job name %q", name)
	case !validJobName(name):
		c.errorf(j.NameStr.Pos, "a job name is up to 100 letters, digits, _, - and ., not starting with . or -; it names files and directories (the staging, the report)", "bad job name %q", name)
	default:
		c.job.Name = name
	}
}

// defaultJobName is the job's name when the file names none: the file's base name without .mf,
// made a valid job name ("my job;rm.mf" runs as my_job_rm).
func defaultJobName(filename string) string {
	b := []byte(strings.TrimSuffix(filepath.Base(filename), ".mf"))
	for i, c := range b {
		if !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	name := strings.TrimLeft(string(b), ".-")
	if len(name) > 100 {
		name = name[:100]
	}
	if name == "" {
		return "job"
	}
	return name
}

// validJobName tells whether name may name a job: it becomes part of file and directory names.
func validJobName(name string) bool {
	if name == "" || len(name) > 100 || name[0] == '.' || name[0] == '-' {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (c *checker) unknownStmt(u *unknownStmt) {
	word := ""
	if len(u.Items) > 0 && u.Items[0].Tok != nil {
		word = u.Items[0].Tok.Value
	}
	if word == "" || !isIdentStart(word[0]) {
		c.errorf(u.Pos, "a line starts with a statement: "+strings.Join(keywords, ", "), "expected a statement, found %q", firstRune(u.Items))
		return
	}
	detail := didYouMean(word, keywords, "the statements are")
	if s := suggest(word, keywords); s != "" {
		c.misspelled[s] = true
	}
	if s := suggest(word, keywords); s == "" && len(u.Items) > 1 && u.Items[1].Tok != nil && u.Items[1].Tok.Value == "=" {
		detail = "settings go inside an env block: env local { " + word + " = ... }"
	}
	c.errorf(u.Pos, detail, "unknown statement %q", word)
}

func firstRune(items []*exprItem) string {
	switch {
	case len(items) == 0:
		return ""
	case items[0].Tok != nil:
		return items[0].Tok.Value
	case items[0].Group != nil:
		return items[0].Group.Open
	}
	return ","
}

func (c *checker) checkEnv(e *envStmt) {
	kindName := e.Kind.Name
	kind, ok := settings.Lookup(kindName)
	if !ok {
		c.errorf(e.Kind.Pos, didYouMean(kindName, settings.Kinds(), "the kinds are"), "unknown env kind %q", kindName)
	}
	name := kindName
	if e.Name != nil {
		name = e.Name.Name
	}
	for _, other := range c.job.Envs {
		if other.Name == name {
			c.errorf(e.Pos, fmt.Sprintf("the first is at %d:%d; give each env a unique name: env %s NAME { ... }", other.Pos.Line, other.Pos.Column, kindName), "duplicate env name %q", name)
			return
		}
	}
	env := &Env{Kind: kindName, Name: name, Pos: e.Pos, Settings: map[string]Setting{}}
	valuePos := map[string]Pos{}
	bad := map[string]bool{} // keys whose value was refused
	var prev *setting
	for _, it := range e.Items {
		switch {
		case it.Comma || it.Newline:
			prev = nil
			continue
		case it.Setting == nil:
			continue
		}
		s := it.Setting
		if prev != nil {
			c.errorf(s.Pos, "separate settings with a newline or a comma", "missing comma before setting %q", s.Key.Name)
		}
		prev = s
		if !ok {
			continue
		}
		key := s.Key.Name
		opt, known := kind.Option(key)
		if !known {
			c.errorf(s.Key.Pos, didYouMean(key, kind.Keys(), "env "+kindName+" takes"), "unknown setting %q in env %s", key, kindName)
			continue
		}
		if old, dup := env.Settings[key]; dup {
			c.errorf(s.Key.Pos, fmt.Sprintf("it is already set at %d:%d", old.Pos.Line, old.Pos.Column), "setting %q is set twice", key)
			continue
		}
		v, problem := convertSetting(opt.Type, s.Value)
		if problem != "" {
			bad[key] = true
			c.errorf(s.Value.Pos, fmt.Sprintf("write it like %s = %s; %s", key, opt.Type.Example(), opt.Help), "setting %q %s", key, problem)
			continue
		}
		if p := opt.CheckValue(v); p != "" {
			bad[key] = true
			c.errorf(s.Value.Pos, key+": "+opt.Help, "setting %q %s, got %s", key, p, describeValue(s.Value))
			continue
		}
		env.Settings[key] = Setting{Value: v, Pos: s.Pos}
		valuePos[key] = s.Value.Pos
	}
	c.job.Envs = append(c.job.Envs, env)
	if !ok {
		return
	}
	missing := false
	for _, opt := range kind.Options {
		if _, set := env.Settings[opt.Key]; !set && opt.Required {
			missing = true
			if !c.setButBad(e, opt.Key) {
				c.errorf(e.Pos, fmt.Sprintf("add a line %s = %s to the block; %s", opt.Key, opt.Type.Example(), opt.Help), "env %s %s is missing required setting %q", kindName, name, opt.Key)
			}
		}
	}
	if missing {
		return // the kind's own checks need its required settings
	}
	values := make(map[string]any, len(env.Settings))
	src := settings.Source{File: e.Pos.Filename, Block: e.Pos.String(), Env: name, Keys: map[string]string{}}
	for k, s := range env.Settings {
		values[k] = s.Value
		src.Keys[k] = s.Pos.String()
	}
	opts, problems := kind.Decode(values, src)
	for _, p := range problems {
		if bad[p.Key] || (p.Key == "" && len(bad) > 0) {
			continue // said already, or caused by a value refused (the check saw its default)
		}
		pos, ok := valuePos[p.Key]
		if !ok {
			pos = e.Pos
		}
		if p.Key != "" {
			c.errorf(pos, p.Hint, "setting %q: %s", p.Key, p.Message)
		} else {
			c.errorf(pos, p.Hint, "env %s %s: %s", kindName, name, p.Message)
		}
	}
	if len(bad) == 0 {
		env.Options = opts
	}
}

// setButBad tells whether key was written in the block (and so already reported).
func (c *checker) setButBad(e *envStmt, key string) bool {
	for _, it := range e.Items {
		if it.Setting != nil && it.Setting.Key.Name == key {
			return true
		}
	}
	return false
}

// convertSetting converts a literal to the schema's type, or says why it cannot.
func convertSetting(t settings.Type, v *value) (any, string) {
	want := "must be " + t.String() + ", got " + describeValue(v)
	switch t {
	case settings.Int:
		if v.Int == nil {
			return nil, want
		}
		n, err := parseInt(*v.Int)
		if err != nil {
			return nil, "is not a valid integer: " + *v.Int
		}
		if v.Minus {
			n = -n
		}
		return n, ""
	case settings.String:
		if v.String == nil || v.Minus {
			if v.Ident != nil {
				return nil, want + " (quote it)"
			}
			return nil, want
		}
		s, err := unquote(*v.String)
		if err != nil {
			return nil, "has a bad string: " + err.Error()
		}
		return s, ""
	case settings.Bool:
		if v.Ident == nil || v.Minus || (*v.Ident != "true" && *v.Ident != "false") {
			return nil, want
		}
		return *v.Ident == "true", ""
	case settings.Duration:
		if v.Duration == nil || v.Minus {
			return nil, want
		}
		d, err := time.ParseDuration(*v.Duration)
		if err != nil {
			return nil, "is not a valid duration: " + *v.Duration
		}
		return d, ""
	case settings.StringList:
		if v.List == nil {
			return nil, want
		}
		out := []string{}
		for _, it := range v.List.Items {
			if it.String == nil || it.Minus {
				return nil, "must be a list of strings, got " + describeValue(it) + " in it"
			}
			s, err := unquote(*it.String)
			if err != nil {
				return nil, "has a bad string: " + err.Error()
			}
			out = append(out, s)
		}
		return out, ""
	}
	return nil, want
}

// describeValue names a literal's type and shows it: `string "3"`, `int 3`.
func describeValue(v *value) string {
	sign := ""
	if v.Minus {
		sign = "-"
	}
	switch {
	case v.Int != nil:
		return "integer " + sign + *v.Int
	case v.Float != nil:
		return "number " + sign + *v.Float
	case v.Duration != nil:
		return "duration " + sign + *v.Duration
	case v.String != nil:
		if s, err := unquote(*v.String); err == nil {
			return "string " + strconv.Quote(s)
		}
		return "string " + *v.String
	case v.Ident != nil && (*v.Ident == "true" || *v.Ident == "false"):
		return "bool " + *v.Ident
	case v.Ident != nil && (*v.Ident == "null" || *v.Ident == "nil"):
		return "null"
	case v.Ident != nil:
		return "bare word " + *v.Ident
	case v.List != nil:
		return "a list"
	}
	return "nothing"
}

func parseInt(s string) (int64, error) {
	return strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
}

// unquote reads a string literal: Go-style escapes in "..." and '...', none in `...`.
func unquote(lit string) (string, error) {
	if len(lit) < 2 {
		return "", errors.New("unterminated string")
	}
	switch lit[0] {
	case '`':
		return lit[1 : len(lit)-1], nil
	case '\'':
		inner := lit[1 : len(lit)-1]
		var b strings.Builder
		b.WriteByte('"')
		for i := 0; i < len(inner); i++ {
			switch {
			case inner[i] == '\\' && i+1 < len(inner) && inner[i+1] == '\'':
				b.WriteByte('\'')
				i++
			case inner[i] == '\\' && i+1 < len(inner):
				b.WriteString(inner[i : i+2])
				i++
			case inner[i] == '"':
				b.WriteString(`\"`)
			default:
				b.WriteByte(inner[i])
			}
		}
		b.WriteByte('"')
		lit = b.String()
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		return "", fmt.Errorf("invalid escape in %s", lit)
	}
	return s, nil
}

func (c *checker) checkFunc(fs *funcStmt) {
	fn := &Func{Name: fs.Name.Name, Pos: fs.Name.Pos}
	seen := map[string]bool{}
	for _, p := range fs.Params {
		switch {
		case slices.Contains(reserved, p.Name):
			c.errorf(p.Pos, "rename it; "+strings.Join(reserved, ", ")+" are reserved", "parameter name %q is reserved", p.Name)
		case seen[p.Name]:
			c.errorf(p.Pos, "each parameter needs its own name", "duplicate parameter %q", p.Name)
		}
		seen[p.Name] = true
		fn.Params = append(fn.Params, p.Name)
	}
	c.job.Func = fn
	fn.Canon = fs.Body.canon()
	fn.Body = c.compile(fs.Body, kindFunc, fn)
	if fn.Body != nil && fn.Body.compiled != nil && fn.Body.Warm == nil {
		for _, p := range fn.Params {
			if !fn.Body.compiled.uses[p] {
				c.warnf(fn.Pos, "every parameter set still needs it, or its task fails with KeyError", "func %s does not use its parameter %q", fn.Name, p)
			}
		}
	}
	c.job.Func = fn
}

// warnUnshipped warns of a serve(...) argument that names a file beside the job file that is
// not shipped: the program will not find it in its working directory.
func (c *checker) warnUnshipped() {
	if c.staged {
		return
	}
	for _, w := range c.unshippedArgs {
		for _, a := range w.Args {
			if a == "" || filepath.IsAbs(a) || strings.HasPrefix(a, "-") {
				continue
			}
			abs := filepath.Join(c.dir, filepath.FromSlash(a))
			if st, err := os.Stat(abs); err != nil || st.IsDir() {
				continue
			}
			shipped := false
			for _, s := range c.job.Ship {
				if abs == s.Abs || strings.HasPrefix(abs, s.Abs+string(filepath.Separator)) {
					shipped = true
				}
			}
			if !shipped {
				c.warnf(w.Pos, fmt.Sprintf("the program runs in a directory of its own, which holds only shipped files: add ship %q", a), "serve argument %q is a file beside the job file that is not shipped", a)
			}
		}
	}
}

// mergeShips adds the implicit ships to the written ones, dropping any path that another
// one holds already (a file shipped twice, a file inside a shipped directory).
func mergeShips(written, implicit []Ship) []Ship {
	all := append(append([]Ship(nil), written...), implicit...)
	var out []Ship
	for i, s := range all {
		covered := false
		for j, o := range all {
			if i == j {
				continue
			}
			inside := strings.HasPrefix(s.Abs, o.Abs+string(filepath.Separator))
			if inside || (s.Abs == o.Abs && j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	return out
}

func (c *checker) checkShip(s *shipStmt) {
	for _, p := range s.Paths {
		rel, err := unquote(p.Value)
		if err != nil {
			c.errorf(p.Pos, "", "bad string: %v", err)
			continue
		}
		ship, detail, problem := resolveShip(c.dir, rel, c.staged)
		if problem != "" {
			c.errorf(p.Pos, detail, "%s", problem)
			continue
		}
		ship.Pos = p.Pos
		c.job.Ship = append(c.job.Ship, ship)
	}
}

// resolveShip checks that a shipped path stays inside dir and, unless staged, exists.
func resolveShip(dir, rel string, staged bool) (Ship, string, string) {
	const inside = "shipped files must be inside the job file's directory, named relative to it"
	switch {
	case rel == "":
		return Ship{}, "name a file, like ship \"train.py\"", "empty ship path"
	case filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, `\`) || filepath.VolumeName(rel) != "":
		return Ship{}, inside, fmt.Sprintf("ship path %q is absolute", rel)
	}
	clean := filepath.Clean(filepath.FromSlash(rel))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return Ship{}, inside, fmt.Sprintf("ship path %q escapes the job file's directory", rel)
	}
	abs := filepath.Join(dir, clean)
	if staged {
		return Ship{Path: rel, Abs: abs}, "", ""
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Ship{}, "looked for " + abs, fmt.Sprintf("cannot ship %q: %v", rel, unwrapPathError(err))
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		return Ship{}, "ship regular files and directories", fmt.Sprintf("cannot ship %q: it is %s", rel, FileKind(st.Mode()))
	}
	// The check above is of the text; symbolic links are checked where they lead.
	if detail, problem := checkLinks(dir, abs, rel, st.IsDir()); problem != "" {
		return Ship{}, detail, problem
	}
	return Ship{Path: rel, Abs: abs}, "", ""
}

// checkLinks refuses a shipped path that a symbolic link takes out of the job file's
// directory dir, and a shipped directory holding a link to a directory (copies follow a link
// to a file, not a tree that may hold itself).
func checkLinks(dir, abs, rel string, isDir bool) (detail, problem string) {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", ""
	}
	inside := func(p string) bool {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return false
		}
		r, err := filepath.Rel(realDir, real)
		return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
	}
	const how = "ship files inside the job file's directory; copy what the link points to there"
	if !inside(abs) {
		real, _ := filepath.EvalSymlinks(abs)
		return how, fmt.Sprintf("ship path %q leads out of the job file's directory, to %s", rel, real)
	}
	if !isDir {
		return "", ""
	}
	filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || problem != "" {
			return nil
		}
		name := filepath.ToSlash(filepath.Join(rel, strings.TrimPrefix(p, abs+string(filepath.Separator))))
		if t := d.Type(); t&(fs.ModeSymlink|fs.ModeDir) == 0 && !t.IsRegular() {
			detail, problem = "ship regular files and directories", fmt.Sprintf("%s, shipped with %q, is %s", name, rel, FileKind(t))
			return filepath.SkipAll
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		if !inside(p) {
			real, _ := filepath.EvalSymlinks(p)
			detail, problem = how, fmt.Sprintf("%s, shipped with %q, is a link out of the job file's directory, to %s", name, rel, real)
			return filepath.SkipAll
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			detail, problem = "ship the directory it points to by its own name", fmt.Sprintf("%s, shipped with %q, is a link to a directory", name, rel)
			return filepath.SkipAll
		}
		return nil
	})
	return detail, problem
}

// FileKind names the kind of a file that is not a regular one: "a named pipe", "a directory".
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

func (c *checker) checkParams(ps *paramsStmt) {
	p := &Params{Pos: ps.Pos}
	switch {
	case ps.Grid != nil:
		p.Kind = "grid"
		p.Grid = c.checkGrid(ps.Grid)
	case ps.File != nil:
		p.Kind = "file"
		p.File = c.checkParamsFile(ps.File)
	default:
		p.Kind = "list"
		if n, ok := literalParams(ps.Expr); ok {
			p.Expr = &Expr{Text: ps.Expr.text, Pos: ps.Expr.Pos}
			p.literal, p.count = true, n
			break
		}
		p.Expr = c.compile(ps.Expr, kindParams, nil)
	}
	c.job.Params = p
}

// literalParams tells whether a params expression is a list of literals written out, which
// Params reads itself, and how many elements it has.
func literalParams(n *exprNode) (int, bool) {
	if len(n.Parts) != 1 || n.Parts[0].Tok == nil || !strings.HasPrefix(n.Parts[0].Tok.Value, "[") {
		return 0, false
	}
	count, err := countLiteral(n.text)
	return count, err == nil
}

const gridExample = "params grid { lr: [0.1, 0.01], depth: [3, 5] }"

// checkGrid takes a grid's braces apart into `KEY: EXPR` entries separated by commas.
func (c *checker) checkGrid(g *exprGroup) []GridAxis {
	if g.Open != "{" {
		c.errorf(g.Pos, "write the axes in braces: "+gridExample, "grid needs braces, not %q", g.Open)
		return nil
	}
	var entries [][]*exprItem
	cur := []*exprItem{}
	for _, it := range g.Inner {
		if it.Comma != nil {
			if len(cur) == 0 {
				c.errorf(it.Comma.Pos, "remove the extra comma", "empty grid entry")
			}
			entries = append(entries, cur)
			cur = []*exprItem{}
			continue
		}
		cur = append(cur, it)
	}
	if len(cur) > 0 {
		entries = append(entries, cur)
	}
	var axes []GridAxis
	seen := map[string]Pos{}
	for _, items := range entries {
		if len(items) == 0 {
			continue
		}
		pos := items[0].pos()
		key, ok := "", false
		if t := items[0].Tok; t != nil && len(t.Value) > 0 {
			switch {
			case isIdentStart(t.Value[0]):
				key, ok = t.Value, true
			case t.Value[0] == '"' || t.Value[0] == '\'' || t.Value[0] == '`':
				k, err := unquote(t.Value)
				key, ok = k, err == nil
			}
		}
		if !ok || len(items) < 3 || items[1].Tok == nil || items[1].Tok.Value != ":" {
			bad := pos
			if ok && len(items) > 1 {
				bad = items[1].pos()
			}
			if ok && len(items) == 2 && items[1].Tok != nil && items[1].Tok.Value == ":" {
				bad = items[1].pos()
				c.errorf(bad, "give the axis its values after the colon: "+key+": [1, 2]", "grid axis %q has no values", key)
				continue
			}
			if ok && len(items) > 1 && (items[1].Tok == nil || items[1].Tok.Value != ":") {
				c.errorf(bad, "each entry is KEY: [values], like "+gridExample, "missing colon after grid key %q", key)
				continue
			}
			c.errorf(bad, "each entry is KEY: [values], like "+gridExample, "bad grid entry")
			continue
		}
		if first, dup := seen[key]; dup {
			c.errorf(pos, fmt.Sprintf("the first is at %d:%d", first.Line, first.Column), "duplicate grid key %q", key)
			continue
		}
		seen[key] = pos
		vals := &exprNode{Pos: items[2].pos()}
		for _, it := range items[2:] {
			vals.Parts = append(vals.Parts, &exprPart{Group: it.Group, Tok: it.Tok})
		}
		c.f.fillText(vals)
		e := c.compile(vals, kindParams, nil)
		axes = append(axes, GridAxis{Key: key, Values: e, Pos: pos})
		if f := c.job.Func; f != nil && !slices.Contains(f.Params, key) {
			c.warnf(pos, "it is ignored; the function takes "+strings.Join(f.Params, ", "), "grid key %q is not a parameter of func %s", key, f.Name)
		}
	}
	if len(entries) == 0 {
		c.errorf(g.Pos, "add at least one axis, like "+gridExample, "empty grid")
		return nil
	}
	if f := c.job.Func; f != nil && len(seen) > 0 {
		for _, name := range f.Params {
			if _, ok := seen[name]; !ok {
				c.warnf(g.Pos, fmt.Sprintf("add an axis %s: [...]; without it every task fails with KeyError", name), "grid has no axis for parameter %q of func %s", name, f.Name)
			}
		}
	}
	return axes
}

func (it *exprItem) pos() Pos {
	switch {
	case it.Group != nil:
		return it.Group.Pos
	case it.Tok != nil:
		return it.Tok.Pos
	}
	return it.Comma.Pos
}

// checkParamsFile checks `params file "PATH"` and returns the resolved path.
func (c *checker) checkParamsFile(n *exprNode) string {
	const how = `name the file in quotes: params file "sets.jsonl"`
	if len(n.Parts) != 1 || n.Parts[0].Tok == nil || !strings.ContainsAny(n.Parts[0].Tok.Value[:1], "\"'`") {
		c.errorf(n.Pos, how, "params file needs one quoted path")
		return ""
	}
	rel, err := unquote(n.Parts[0].Tok.Value)
	if err != nil {
		c.errorf(n.Pos, how, "bad string: %v", err)
		return ""
	}
	ext := strings.ToLower(filepath.Ext(rel))
	if ext != ".jsonl" && ext != ".csv" {
		c.errorf(n.Pos, "use a .jsonl file (one JSON object per line) or a .csv file with a header row", "params file %q must end in .jsonl or .csv", rel)
		return ""
	}
	path := rel
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.dir, filepath.FromSlash(rel))
	}
	if c.staged {
		return path
	}
	if st, err := os.Stat(path); err != nil {
		c.errorf(n.Pos, "looked for "+path+"; relative paths start at the job file's directory", "cannot read params file %q: %v", rel, unwrapPathError(err))
		return ""
	} else if st.IsDir() {
		c.errorf(n.Pos, "name a .jsonl or .csv file", "params file %q is a directory", rel)
		return ""
	}
	return path
}

func (c *checker) checkRetries(o *optionStmt) {
	v := o.Value
	if v.Int == nil || v.Minus {
		c.errorf(v.Pos, "write the number of extra attempts, like retries 2", "retries must be an integer >= 0, got %s", describeValue(v))
		return
	}
	n, err := parseInt(*v.Int)
	if err != nil || n > 1000 {
		c.errorf(v.Pos, "write a number from 0 to 1000", "retries %s is too large", *v.Int)
		return
	}
	c.job.Retries = int(n)
}

func (c *checker) checkRecycle(o *optionStmt) {
	v := o.Value
	if v.Int == nil || v.Minus {
		c.errorf(v.Pos, "write how many tasks a worker process runs before it is started afresh, like recycle 100", "recycle must be an integer >= 1, got %s", describeValue(v))
		return
	}
	n, err := parseInt(*v.Int)
	if err != nil || n < 1 || n > 1<<31-1 {
		c.errorf(v.Pos, "write a number from 1 to 2147483647", "recycle %s is out of range", *v.Int)
		return
	}
	c.job.Recycle = int(n)
}

func (c *checker) checkCache(o *cacheStmt) {
	v := o.Value
	switch {
	case v == nil:
		c.job.Cache = true
	case v.Ident != nil && !v.Minus && (*v.Ident == "true" || *v.Ident == "false"):
		c.job.Cache = *v.Ident == "true"
	default:
		c.errorf(v.Pos, "write cache to reuse the tasks of earlier runs, or cache false", "cache takes true or false, got %s", describeValue(v))
	}
}

func (c *checker) checkTimeout(o *optionStmt) {
	v := o.Value
	switch {
	case v.Duration != nil && !v.Minus:
		d, err := time.ParseDuration(*v.Duration)
		if err != nil || d <= 0 {
			c.errorf(v.Pos, "write a positive duration like 30s, 1.5m, 500ms or 2h", "bad timeout %s", *v.Duration)
			return
		}
		c.job.Timeout = d
	case (v.Int != nil || v.Float != nil) && !v.Minus:
		num := v.Int
		if num == nil {
			num = v.Float
		}
		c.errorf(v.Pos, fmt.Sprintf("add a unit: %ss, %sm or %sms", *num, *num, *num), "timeout needs a unit")
	default:
		c.errorf(v.Pos, "write a duration like 30s, 1.5m, 500ms or 2h", "timeout must be a positive duration, got %s", describeValue(v))
	}
}
