package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mapflow/mapflow/lang"
)

// keyOf loads the job file src (with files beside it) and returns the cache key of params.
func keyOf(t *testing.T, src string, files map[string]string, params map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "job.mf")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	job, err := lang.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewCacheKeyer(job)
	if err != nil {
		t.Fatal(err)
	}
	key, err := k.Key(params)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestCacheKey: each part of the key changes it, and what is not part of it does not.
func TestCacheKey(t *testing.T) {
	const base = "job a\nfunc f(x, y) = exec(\"sh\", \"run.sh\", x, y)\nship \"run.sh\"\nparams [{x: 1, y: 2}]\n"
	files := map[string]string{"run.sh": "echo $1"}
	set := map[string]any{"x": 1, "y": []any{1, map[string]any{"b": 1, "a": 2}}}
	want := keyOf(t, base, files, set)
	same := []struct {
		name   string
		src    string
		files  map[string]string
		params map[string]any
	}{
		{"the job name", "job b\n" + base[len("job a\n"):], files, set},
		{"a comment, retries, timeout and the combiner", "# a comment\n" + base + "retries 2\ntimeout 5s\ncombine len(results)\n", files, set},
		{"a key the function does not take", base, files, map[string]any{"x": 1, "y": set["y"], "z": 9}},
	}
	for _, c := range same {
		if got := keyOf(t, c.src, c.files, c.params); got != want {
			t.Errorf("%s changed the key", c.name)
		}
	}
	differ := []struct {
		name   string
		src    string
		files  map[string]string
		params map[string]any
	}{
		{"a parameter's value", base, files, map[string]any{"x": 2, "y": set["y"]}},
		{"a nested value", base, files, map[string]any{"x": 1, "y": []any{1, map[string]any{"b": 1, "a": 3}}}},
		{"a missing parameter", base, files, map[string]any{"y": set["y"]}},
		{"the function's text", "job a\nfunc f(x, y) = exec(\"sh\", \"run.sh\", y, x)\nship \"run.sh\"\nparams [{x: 1, y: 2}]\n", files, set},
		{"a parameter's name", "job a\nfunc f(x, z) = exec(\"sh\", \"run.sh\", x, z)\nship \"run.sh\"\nparams [{x: 1, z: 2}]\n", files, map[string]any{"x": 1, "z": set["y"]}},
		{"a shipped file's content", base, map[string]string{"run.sh": "echo $2"}, set},
		{"the function's name", "job a\nfunc g(x, y) = exec(\"sh\", \"run.sh\", x, y)\nship \"run.sh\"\nparams [{x: 1, y: 2}]\n", files, set},
		{"a string's bytes that are not UTF-8", base, files, map[string]any{"x": "a\xffb", "y": set["y"]}},
		{"1.0 for 1", base, files, map[string]any{"x": 1.0, "y": set["y"]}},
		{"a float for an integer inside a list", base, files, map[string]any{"x": 1, "y": []any{1.0, map[string]any{"b": 1, "a": 2}}}},
	}
	for _, c := range differ {
		if got := keyOf(t, c.src, c.files, c.params); got == want {
			t.Errorf("%s did not change the key", c.name)
		}
	}
}

// TestCacheKeySalt: $MAPFLOW_CACHE_SALT enters the key; each value gives its own.
// TestCacheKeyInvalidUTF8: strings that JSON writes alike (each byte that is not UTF-8 as
// U+FFFD) have keys of their own, as a program gets their bytes.
func TestCacheKeyInvalidUTF8(t *testing.T) {
	const src = "job a\nfunc f(x) = x\nparams [{x: 1}]\n"
	a := keyOf(t, src, nil, map[string]any{"x": []any{map[string]any{"k\xff": "a\xffb"}}})
	b := keyOf(t, src, nil, map[string]any{"x": []any{map[string]any{"k\xff": "a\xfeb"}}})
	c := keyOf(t, src, nil, map[string]any{"x": []any{map[string]any{"k\xfe": "a\xffb"}}})
	if a == b || a == c {
		t.Errorf("keys of a\\xffb, a\\xfeb and of another key: %s %s %s; want three", a, b, c)
	}
}

func TestCacheKeySalt(t *testing.T) {
	const src = "job a\nfunc f(x) = x + 1\nparams [{x: 1}]\n"
	set := map[string]any{"x": 1}
	none := keyOf(t, src, nil, set)
	t.Setenv(CacheSaltEnv, "v1")
	v1 := keyOf(t, src, nil, set)
	t.Setenv(CacheSaltEnv, "v2")
	v2 := keyOf(t, src, nil, set)
	if none == v1 || v1 == v2 || none == v2 {
		t.Errorf("keys without a salt, with v1 and with v2: %s %s %s; want three", none, v1, v2)
	}
	if none[:16] == v1[:16] {
		t.Errorf("the salt did not change the key's job part (its first 16 digits)")
	}
}

// TestFileSHA256NamedPipe: a named pipe is refused at once, not read (which would wait for a
// writer for ever).
func TestFileSHA256NamedPipe(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skip(err)
	}
	if _, err := FileSHA256(p); err == nil || !strings.Contains(err.Error(), "is not a regular file (a named pipe)") {
		t.Errorf("FileSHA256 of a named pipe: %v", err)
	}
	if err := CopyFile(p, filepath.Join(t.TempDir(), "copy"), 0o644); err == nil {
		t.Errorf("CopyFile of a named pipe did not fail")
	}
}

// TestCacheKeyFormat: the format version is in the key: a key of another layout never matches.
func TestCacheKeyFormat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "job.mf")
	if err := os.WriteFile(path, []byte("job a\nfunc f(x) = x + 1\nparams [{x: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	job, err := lang.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, format := range []string{cacheFormat, "mapflow-cache-0"} {
		k, err := newCacheKeyer(job, format)
		if err != nil {
			t.Fatal(err)
		}
		key, err := k.Key(map[string]any{"x": 1})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	if keys[0] == keys[1] {
		t.Errorf("two formats gave one key %s", keys[0])
	}
}
