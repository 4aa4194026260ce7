package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/mapflow/mapflow/lang"
)

// cacheFormat is the version of the cache key's layout: a change of what enters the key, or
// how, changes it, so that no key of an older layout matches.
const cacheFormat = "mapflow-cache-1"

// CacheKeyer computes the cache keys of a job's tasks: a hash of everything that decides a
// task's result. Its job part is hashed once: the format version; the function's name (which
// python(FILE) calls), parameters and body as written, without comments and layout
// (lang.Func.Canon: an expression's text; exec's program and argument template; python's or
// serve's call); the path and content of every shipped file (python(...)'s module is shipped,
// so its content counts); and $MAPFLOW_CACHE_SALT when set. Each task adds its parameter set:
// the function's parameters only (keys it does not take cannot change its result), each as the
// catalog writes it, JSON with sorted keys, and what that JSON does not tell (whether a number
// is an integer or a float: 1 and 1.0 are two values; a string's bytes that are not UTF-8).
// Not in the key: the job's name, env, retries, timeout and combiner, environment variables
// (MAPFLOW_TASK_NAME and the like included), and a program outside the shipped files but by
// its path.
type CacheKeyer struct {
	job    []byte // the job part's hash
	params []string
	// Parts name each part of the job part with its own hash, for explaining a miss:
	// "func", "ship:PATH"; and "format", the layout's version.
	Parts map[string]string
}

// CacheSaltEnv names the environment variable whose value, when set, enters every cache key of
// a run: a new value each run opts its tasks out of reuse, and a value such as a data version
// makes reuse depend on it.
const CacheSaltEnv = "MAPFLOW_CACHE_SALT"

// NewCacheKeyer hashes the job part of job's cache keys; it reads every shipped file.
func NewCacheKeyer(job *lang.Job) (*CacheKeyer, error) { return newCacheKeyer(job, cacheFormat) }

func newCacheKeyer(job *lang.Job, format string) (*CacheKeyer, error) {
	k := &CacheKeyer{params: slices.Clone(job.Func.Params), Parts: map[string]string{"format": format}}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", format)
	fn := sha256.Sum256(fmt.Appendf(nil, "%q\x00%q\x00%s", job.Func.Name, job.Func.Params, job.Func.Canon))
	k.Parts["func"] = hex.EncodeToString(fn[:])
	h.Write(fn[:])
	files, err := ShippedFiles(job)
	if err != nil {
		return nil, fmt.Errorf("cache key: %w", err)
	}
	for _, f := range files {
		sum, err := FileSHA256(f.Path)
		if err != nil {
			return nil, fmt.Errorf("cache key: read shipped %q: %w", f.Name, err)
		}
		k.Parts["ship:"+f.Name] = sum
		fmt.Fprintf(h, "ship\x00%s\x00%s\x00", f.Name, sum)
	}
	if salt := os.Getenv(CacheSaltEnv); salt != "" {
		k.Parts["salt"] = salt
		fmt.Fprintf(h, "salt\x00%s\x00", salt)
	}
	k.job = h.Sum(nil)
	return k, nil
}

// PartsJSON is Parts as JSON, for the job's row (catalog.Job.CacheParts).
func (k *CacheKeyer) PartsJSON() []byte {
	b, _ := json.Marshal(k.Parts) // a map of strings always marshals
	return b
}

// Key is the cache key of the task with the given parameter set, as 64 hex digits: the first
// 16 are the job part's, the rest the task's hash. Keys of one job part are thus neighbours in
// cache_index, which a run writes in key order: its new entries gather in one region instead
// of landing all over the index.
func (k *CacheKeyer) Key(params map[string]any) (string, error) {
	var space [256]byte
	buf, err := appendParams(append(space[:0], k.job...), k.params, params)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf)
	var out [64]byte
	hex.Encode(out[:16], k.job[:8])
	hex.Encode(out[16:], sum[:24])
	return string(out[:]), nil
}

// appendParams appends the named parameters of set as canonical JSON: in the function's
// order, objects with sorted keys, each followed by what JSON does not tell of it.
func appendParams(buf []byte, names []string, set map[string]any) ([]byte, error) {
	for _, name := range names {
		buf = append(buf, name...)
		buf = append(buf, 0)
		v, ok := set[name]
		if !ok {
			buf = append(buf, "missing"...)
		} else {
			var err error
			if buf, err = AppendJSON(buf, v); err != nil {
				return nil, fmt.Errorf("cache key: parameter %s: %w", name, err)
			}
			buf = appendTypeDetail(buf, v)
		}
		buf = append(buf, 0)
	}
	return buf, nil
}

// appendTypeDetail appends what JSON does not tell of v, when there is any: for each number in
// the order AppendJSON writes them, whether it is an integer or a float (1 and 1.0 are one
// JSON number, but an expression computes with them differently: 10^17 * 1000 wraps around as
// an integer, and % takes integers only), and, for each string (keys included) that is not
// valid UTF-8, its bytes with their length (JSON writes each such byte as U+FFFD, but a
// program gets the bytes). Values with neither a float nor such a string append nothing.
func appendTypeDetail(b []byte, v any) []byte {
	if !hasTypeDetail(v) {
		return b
	}
	return appendDetail(b, v)
}

func appendDetail(b []byte, v any) []byte {
	switch v := v.(type) {
	case float64, float32:
		b = append(b, 'f')
	case int, int64, int32, uint, uint64, json.Number:
		b = append(b, 'i')
	case string:
		if !utf8.ValidString(v) {
			b = append(b, 's')
			b = strconv.AppendInt(b, int64(len(v)), 10)
			b = append(b, ':')
			b = append(b, v...)
		}
	case []any:
		for _, e := range v {
			b = appendDetail(b, e)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendDetail(b, k)
			b = appendDetail(b, v[k])
		}
	}
	return b
}

// hasTypeDetail tells whether v holds a float, or a string (keys included) that is not valid
// UTF-8.
func hasTypeDetail(v any) bool {
	switch v := v.(type) {
	case float64, float32:
		return true
	case string:
		return !utf8.ValidString(v)
	case []any:
		return slices.ContainsFunc(v, hasTypeDetail)
	case map[string]any:
		for k, e := range v {
			if !utf8.ValidString(k) || hasTypeDetail(e) {
				return true
			}
		}
	}
	return false
}

// FileSHA256 is the hex SHA-256 of a file's content.
func FileSHA256(path string) (string, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
