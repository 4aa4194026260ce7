package lang

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// normalize makes v JSON-like: nil, bool, int, float64, string, []any, map[string]any (and a
// Command, for exec bodies). expr-lang can produce other types, like []int from 1..3 or
// time.Time from now(). Lists and objects are fixed in place: the conversions keep their JSON
// unchanged, so sharing them is harmless.
// maxValues bounds the values a result holds, counting a list or object each time it is
// reached: reduce(1..40, [#acc, #acc], 1) builds 40 lists, but a result of 2^40 values.
const maxValues = exprBudget

// maxDepth bounds how deep lists and objects nest in a result: encoding/json reads no deeper,
// and reduce(1..1000000, [#acc], 1) would otherwise overflow the stack of whatever walks it.
const maxDepth = 10000

// tooLarge tells whether v holds more than maxValues values or nests deeper than maxDepth,
// walking no further than that. Lists and objects of any Go type count (groupBy makes a
// map[any][]any), since normalize walks them all.
func tooLarge(v any) bool {
	n := 0
	var walk func(v any, depth int) bool
	walk = func(v any, depth int) bool {
		if n++; n > maxValues || depth > maxDepth {
			return false
		}
		switch x := v.(type) {
		case nil, bool, int, float64, string, Command:
			return true
		case []any:
			for _, e := range x {
				if !walk(e, depth+1) {
					return false
				}
			}
			return true
		case map[string]any:
			for _, e := range x {
				if !walk(e, depth+1) {
					return false
				}
			}
			return true
		}
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			for i := range rv.Len() {
				if !walk(rv.Index(i).Interface(), depth+1) {
					return false
				}
			}
		case reflect.Map:
			it := rv.MapRange()
			for it.Next() {
				if !walk(it.Value().Interface(), depth+1) {
					return false
				}
			}
		case reflect.Pointer, reflect.Interface:
			if !rv.IsNil() {
				return walk(rv.Elem().Interface(), depth+1)
			}
		}
		return true
	}
	return !walk(v, 0)
}

func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, int, float64, string, Command, json.Number:
		// json.Number is an integer past int64 from a task's JSON output, kept exact: as a
		// Stringer it would become a string.
		return v
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case float32:
		return float64(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > uint64(^uint(0)>>1) {
			return float64(u)
		}
		return int(u)
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = normalize(it.Value().Interface())
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return normalize(rv.Elem().Interface())
	}
	return fmt.Sprint(v)
}
