package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	rt "github.com/mapflow/mapflow/runtime"
)

// Object names in a staging directory.
const (
	manifestName = "job.json"
	shipDir      = "ship"
	tasksDir     = "tasks"
	endName      = "tasks/END"
	claimsDir    = "claims"
	resultsDir   = "results"
	lostDir      = "lost"
	cancelName   = "cancel"
)

// Manifest describes a staged job to its workers.
type Manifest struct {
	JobID      string     `json:"job_id"`
	ScriptPath string     `json:"script_path"` // the job file as the user named it, for tracebacks
	Script     string     `json:"script"`      // its text
	Env        string     `json:"env"`         // the env block the job runs in
	Ship       []ShipFile `json:"ship"`        // shipped files, under ship/
	// Threads is how many tasks a worker runs at once; 0 is one per CPU.
	Threads int `json:"threads,omitempty"`
}

// ShipFile is a shipped file: its path as the job file names it, and its permission bits.
type ShipFile struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode"`
}

// taskLine is one task in a chunk.
type taskLine struct {
	Index   int             `json:"i"`
	Name    string          `json:"n"`
	Attempt int             `json:"a,omitempty"` // attempts made before this chunk was staged
	Params  json.RawMessage `json:"p"`
}

// resultLine is one attempt's outcome. Retry marks an attempt after which the task was tried
// again; the last line of a task is its final outcome.
type resultLine struct {
	Index     int             `json:"i"`
	Attempt   int             `json:"a"`
	Retry     bool            `json:"retry,omitempty"`
	Status    rt.Status       `json:"s"`
	Host      string          `json:"h,omitempty"`
	Start     int64           `json:"t0"` // Unix nanoseconds
	End       int64           `json:"t1"`
	Value     json.RawMessage `json:"v,omitempty"`
	Exception string          `json:"e,omitempty"`
	Message   string          `json:"m,omitempty"`
	Traceback string          `json:"tb,omitempty"`
	ExitCode  *int            `json:"x,omitempty"`
	Stdout    []byte          `json:"o,omitempty"`
	Stderr    []byte          `json:"r,omitempty"`
}

// shardChunks is how many chunks share a directory (a shard, named by chunk/shardChunks) in
// tasks/, claims/ and results/. A reader lists only the shards of the chunks it still waits
// for, so a listing costs the chunks in flight, not the job's: a directory store and HDFS read
// a directory whole (75 ms for 100,000 names here), and HDFS refuses more than 1,048,576
// items in one directory (dfs.namenode.fs-limits.max-directory-items).
const shardChunks = 1000

func chunkName(n int) string { return fmt.Sprintf("%08d", n) }

// shardDir is the directory under dir of chunk n's objects.
func shardDir(dir string, n int) string { return fmt.Sprintf("%s/%05d", dir, n/shardChunks) }

func chunkObject(n int) string { return shardDir(tasksDir, n) + "/" + chunkName(n) + ".jsonl" }

func claimObject(n, run int) string {
	return shardDir(claimsDir, n) + "/" + chunkName(n) + "." + strconv.Itoa(run)
}

func resultObject(n, run int) string {
	return shardDir(resultsDir, n) + "/" + chunkName(n) + "." + strconv.Itoa(run) + ".jsonl"
}

func resultPartObject(n, run, part int) string {
	return shardDir(resultsDir, n) + "/" + chunkName(n) + "." + strconv.Itoa(run) + "." + strconv.Itoa(part) + ".jsonl"
}

// listChunks lists the objects of chunks from (inclusive) to upto (exclusive) under dir
// (claims or results), shard by shard; the names are relative to dir ("00001/00001234.1").
// It may return objects of later chunks of upto's shard.
func listChunks(ctx context.Context, s Store, dir string, from, upto int) ([]string, error) {
	var out []string
	after := chunkName(from) // every object of chunk from sorts after its bare number
	for sh := from / shardChunks; sh*shardChunks < upto; sh++ {
		d := shardDir(dir, sh*shardChunks)
		names, err := s.List(ctx, d, after)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			out = append(out, d[len(dir)+1:]+"/"+name)
		}
		after = ""
	}
	return out, nil
}

// stagedChunks returns how many chunks are staged, counting from chunk from (which the caller
// knows to be staged, or from when none is), and whether END says that is all of them. Chunks
// are staged in order, so a shard is listed only when the one before it is full.
func stagedChunks(ctx context.Context, s Store, from int) (chunks int, end bool, err error) {
	data, err := s.Get(ctx, endName)
	if err == nil {
		n, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("read %s: %q is not a chunk count", endName, data)
		}
		return n, true, nil
	}
	if !errors.Is(err, ErrNotExist) {
		return 0, false, err
	}
	chunks = from
	for sh := from / shardChunks; ; sh++ {
		names, err := s.List(ctx, shardDir(tasksDir, sh*shardChunks), chunkName(chunks))
		if err != nil {
			return 0, false, err
		}
		for _, name := range names {
			if n, err := strconv.Atoi(strings.TrimSuffix(name, ".jsonl")); err == nil && n+1 > chunks {
				chunks = n + 1
			}
		}
		if chunks < (sh+1)*shardChunks {
			return chunks, false, nil
		}
	}
}

// forgetBefore deletes from m the claims and results objects of the chunks before from.
func forgetBefore[V any](m map[string]V, from int) {
	for name := range m {
		if c, _, _, ok := parseRunName(name); ok && c < from {
			delete(m, name)
		}
	}
}

// parseRunName reads "NNNNNNNN.K" (a claim), "NNNNNNNN.K.jsonl" (a run's results, complete)
// or "NNNNNNNN.K.P.jsonl" (part P of a re-run's results, written as its tasks finish), after
// the shard directory, if any.
func parseRunName(name string) (chunk, run, part int, ok bool) {
	name = name[strings.LastIndexByte(name, '/')+1:]
	fields := strings.Split(strings.TrimSuffix(name, ".jsonl"), ".")
	if len(fields) < 2 || len(fields) > 3 {
		return 0, 0, 0, false
	}
	var err [3]error
	chunk, err[0] = strconv.Atoi(fields[0])
	run, err[1] = strconv.Atoi(fields[1])
	if len(fields) == 3 {
		part, err[2] = strconv.Atoi(fields[2])
		if part < 1 {
			return 0, 0, 0, false
		}
	}
	return chunk, run, part, err[0] == nil && err[1] == nil && err[2] == nil && run > 0
}

func encodeLines[T any](lines []T) ([]byte, error) {
	var buf []byte
	var slow bytes.Buffer
	enc := json.NewEncoder(&slow)
	enc.SetEscapeHTML(false)
	for i := range lines {
		if f, ok := any(&lines[i]).(fastLine); ok {
			var done bool
			if buf, done = f.appendFast(buf); done {
				continue
			}
		}
		slow.Reset()
		if err := enc.Encode(&lines[i]); err != nil {
			return nil, err
		}
		buf = append(buf, slow.Bytes()...)
	}
	return buf, nil
}

func decodeLines[T any](data []byte) ([]T, error) {
	out := make([]T, 0, bytes.Count(data, []byte{'\n'})+1)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<30)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v T
		if f, ok := any(&v).(fastLine); ok && f.parseFast(sc.Bytes()) {
			out = append(out, v)
			continue
		}
		v = *new(T)
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// toLine records a Result.
func toLine(r *rt.Result, retry bool) resultLine {
	l := resultLine{Index: r.Index, Attempt: r.Attempt, Retry: retry, Status: r.Status, Host: r.Host,
		Start: r.Start.UnixNano(), End: r.End.UnixNano(), Exception: r.Exception, Message: r.Message,
		Traceback: r.Traceback, ExitCode: r.ExitCode, Stdout: r.Stdout, Stderr: r.Stderr}
	if r.Status == rt.Completed {
		l.Value = r.ValueJSON
		if l.Value == nil {
			l.Value, _ = rt.MarshalJSON(r.Value)
		}
		if l.Value == nil {
			l.Value = json.RawMessage("null")
		}
	}
	return l
}

// result turns a recorded line back into a Result for the driver.
func (l *resultLine) result() *rt.Result {
	r := rt.NewResult()
	r.Index, r.Attempt, r.Status, r.Host = l.Index, l.Attempt, l.Status, l.Host
	r.Start, r.End = time.Unix(0, l.Start), time.Unix(0, l.End)
	r.Exception, r.Message, r.Traceback, r.ExitCode = l.Exception, l.Message, l.Traceback, l.ExitCode
	r.Stdout, r.Stderr = l.Stdout, l.Stderr
	if l.Status == rt.Completed {
		r.ValueJSON = l.Value
		r.Value = rt.DecodeJSON(l.Value)
	}
	return r
}
