// Package settings declares the settings of each env kind once, as a typed options struct
// whose fields carry their key, default, bounds and help in struct tags, and decodes an env
// block's values into that struct. The job language checks env blocks against the kinds
// registered here without knowing any of them; `mapflow envs` prints them.
//
// A field is a setting when it has a `setting:"key"` tag; its Go type gives the setting's
// type (int, string, bool, time.Duration, []string). Other tags:
//
//	default:"512"      the value when the block leaves the key out (written as in a job file)
//	min:"1" max:"64"   bounds of an int
//	required:"true"    the block must set it
//	help:"..."         one line for `mapflow envs` and error hints
//
// Embedded structs are walked, so settings common to every kind are declared once. A field of
// type Source receives where the block and each key are written. An options struct whose
// pointer has a Check() []Problem method is checked after decoding (a bucket name, say); one
// with a Prepare() []Problem method is prepared for the env a command runs in (a directory
// that must exist): `check` and `run` share both.
package settings

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Type is a setting's type.
type Type int

// The types a setting may have.
const (
	Int Type = iota
	String
	Bool
	Duration
	StringList
)

// String says how a value of the type is written, for error messages.
func (t Type) String() string {
	switch t {
	case Int:
		return "an integer"
	case String:
		return "a string"
	case Bool:
		return "true or false"
	case Duration:
		return "a duration like 30s or 5m"
	case StringList:
		return `a list of strings like ["a", "b"]`
	}
	return "?"
}

// Name is the type's short name, for `mapflow envs`.
func (t Type) Name() string {
	return [...]string{"int", "string", "bool", "duration", "[string]"}[t]
}

// Example is a value of the type as written in a job file.
func (t Type) Example() string {
	return [...]string{"4", `"..."`, "true", "5m", `["a", "b"]`}[t]
}

// Option is one setting of a kind.
type Option struct {
	Key      string
	Type     Type
	Default  string // as written in a job file; "" for none
	Required bool
	Bounded  bool // Min and Max apply
	Min, Max int64
	Help     string

	field []int // index path in the options struct
	def   any   // Default, decoded
}

// Kind is an env kind: its name, its settings and the options struct they decode into.
type Kind struct {
	Name    string
	Options []Option // sorted by key
	typ     reflect.Type
}

// Option returns the kind's setting key.
func (k *Kind) Option(key string) (*Option, bool) {
	i, ok := slices.BinarySearchFunc(k.Options, key, func(o Option, key string) int { return strings.Compare(o.Key, key) })
	if !ok {
		return nil, false
	}
	return &k.Options[i], true
}

// Keys are the kind's setting keys, sorted.
func (k *Kind) Keys() []string {
	keys := make([]string, len(k.Options))
	for i, o := range k.Options {
		keys[i] = o.Key
	}
	return keys
}

var (
	mu    sync.RWMutex
	kinds = map[string]*Kind{}
)

// Register declares the env kind name with the options struct that proto is (or points at).
// A declaration it cannot read is a programming error: it panics, at init.
func Register(name string, proto any) *Kind {
	t := reflect.TypeOf(proto)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("settings: kind %s: options must be a struct, not %s", name, t))
	}
	k := &Kind{Name: name, typ: t}
	if err := k.collect(t, nil); err != nil {
		panic(fmt.Sprintf("settings: kind %s: %v", name, err))
	}
	slices.SortFunc(k.Options, func(a, b Option) int { return strings.Compare(a.Key, b.Key) })
	for i := 1; i < len(k.Options); i++ {
		if k.Options[i].Key == k.Options[i-1].Key {
			panic(fmt.Sprintf("settings: kind %s: setting %q declared twice", name, k.Options[i].Key))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("settings: kind %s registered twice", name))
	}
	kinds[name] = k
	return k
}

// Lookup returns the registered kind name.
func Lookup(name string) (*Kind, bool) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := kinds[name]
	return k, ok
}

// Kinds are the names of the registered kinds, sorted.
func Kinds() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var (
	sourceType   = reflect.TypeFor[Source]()
	durationType = reflect.TypeFor[time.Duration]()
)

func (k *Kind) collect(t reflect.Type, path []int) error {
	for i := range t.NumField() {
		f := t.Field(i)
		at := append(slices.Clone(path), i)
		key, tagged := f.Tag.Lookup("setting")
		switch {
		case f.Type == sourceType:
			continue
		case !tagged && f.Anonymous && f.Type.Kind() == reflect.Struct:
			if err := k.collect(f.Type, at); err != nil {
				return err
			}
			continue
		case !tagged:
			continue
		}
		o := Option{Key: key, Help: f.Tag.Get("help"), Default: f.Tag.Get("default"), Required: f.Tag.Get("required") == "true", field: at}
		switch {
		case f.Type == durationType:
			o.Type = Duration
		case f.Type.Kind() == reflect.Int:
			o.Type = Int
		case f.Type.Kind() == reflect.String:
			o.Type = String
		case f.Type.Kind() == reflect.Bool:
			o.Type = Bool
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			o.Type = StringList
		default:
			return fmt.Errorf("setting %q: unsupported type %s", key, f.Type)
		}
		if lo, hi := f.Tag.Get("min"), f.Tag.Get("max"); lo != "" || hi != "" {
			var err1, err2 error
			o.Min, err1 = strconv.ParseInt(lo, 10, 64)
			o.Max, err2 = strconv.ParseInt(hi, 10, 64)
			if err1 != nil || err2 != nil || o.Type != Int {
				return fmt.Errorf("setting %q: min and max must both be integers, on an int", key)
			}
			o.Bounded = true
		}
		if o.Default != "" {
			v, err := parseDefault(o.Type, o.Default)
			if err != nil {
				return fmt.Errorf("setting %q: default %q: %v", key, o.Default, err)
			}
			o.def = v
		}
		k.Options = append(k.Options, o)
	}
	return nil
}

func parseDefault(t Type, s string) (any, error) {
	switch t {
	case Int:
		return strconv.ParseInt(s, 10, 64)
	case String:
		return s, nil
	case Bool:
		return strconv.ParseBool(s)
	case Duration:
		return time.ParseDuration(s)
	}
	return nil, fmt.Errorf("a list has no default")
}

// Source is where an env block and its settings are written. An options struct that has a
// field of this type receives it when decoded.
type Source struct {
	File  string            // the job file
	Block string            // "file:line:col" of the env block
	Env   string            // the block's name
	Keys  map[string]string // "file:line:col" of each key written
}

// At is where the first of keys that is written is, else where the block is: the place in
// the job file an error about those settings points at.
func (s Source) At(keys ...string) string {
	for _, k := range keys {
		if p, ok := s.Keys[k]; ok {
			return p
		}
	}
	if s.Block != "" {
		return s.Block
	}
	return "env " + s.Env
}

// Errorf is an error that points at the first of keys that is written (see At).
func (s Source) Errorf(keys []string, format string, args ...any) error {
	return fmt.Errorf("%s: %s", s.At(keys...), fmt.Sprintf(format, args...))
}

// Problem is what Check found wrong with a setting: Key names it ("" for the block as a
// whole), Message says what is wrong and Hint how to put it right.
type Problem struct {
	Key     string
	Message string
	Hint    string
}

// Checker is implemented by options structs (on their pointer) that validate their values as
// written: every env block of a job file is checked so.
type Checker interface {
	Check() []Problem
}

// Preparer is implemented by options structs (on their pointer) that resolve and check what
// depends on the machine (a path relative to the job file, a directory that must exist, a
// configuration file to read), for the env block a command runs in: `check` and `run` call it
// alike, through the job language's Env.Prepare.
type Preparer interface {
	Prepare(ctx context.Context) []Problem
}

// Decode makes the kind's options struct from values (each already of its option's type: int64,
// string, bool, time.Duration or []string), with defaults for the keys left out, and checks it.
// It returns a pointer to the struct.
func (k *Kind) Decode(values map[string]any, src Source) (any, []Problem) {
	p := reflect.New(k.typ)
	v := p.Elem()
	for _, o := range k.Options {
		val, ok := values[o.Key]
		if !ok {
			val = o.def
		}
		if val == nil {
			continue
		}
		f := v.FieldByIndex(o.field)
		switch x := val.(type) {
		case int64:
			f.SetInt(x)
		case int:
			f.SetInt(int64(x))
		case time.Duration:
			f.SetInt(int64(x))
		default:
			f.Set(reflect.ValueOf(val))
		}
	}
	setSource(v, src)
	if c, ok := p.Interface().(Checker); ok {
		return p.Interface(), c.Check()
	}
	return p.Interface(), nil
}

// setSource sets every field of type Source in v, embedded structs included.
func setSource(v reflect.Value, src Source) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == sourceType:
			f.Set(reflect.ValueOf(src))
		case v.Type().Field(i).Anonymous && f.Kind() == reflect.Struct:
			setSource(f, src)
		}
	}
}

// CheckValue says what is wrong with a value of the option's type, against its bounds, or "".
func (o *Option) CheckValue(v any) string {
	if n, ok := v.(int64); ok && o.Bounded && (n < o.Min || n > o.Max) {
		return fmt.Sprintf("must be from %d to %d", o.Min, o.Max)
	}
	return ""
}
