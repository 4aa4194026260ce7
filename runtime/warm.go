package runtime

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/mapflow/mapflow/lang"
)

// The line protocol between mapflow and a warm worker process (README, "The line protocol"):
//
//   - mapflow starts the program with two extra descriptors: requests to read
//     (MAPFLOW_REQUESTS_FD, 3) and responses to write (MAPFLOW_RESPONSES_FD, 4). Its standard
//     output and error are the tasks' logs.
//   - The program writes one ready message: {"ready": true} once it can take tasks (with
//     "marks": true when it marks its output, below), or {"ready": false, "error": {...}}.
//   - mapflow writes one request a line: {"index": 3, "name": "add-3", "attempt": 1,
//     "params": {...}}; it may send more before the first is answered.
//   - The program answers each request in order, one line each: {"index": 3, "result": ...}
//     or {"index": 3, "error": {"type": "TypeError", "message": "...", "traceback": "..."}}.
//   - A program that marks its output writes the text of MAPFLOW_MARK to standard output and
//     to standard error after each task (and once after starting), before its response, so
//     that each stream is cut exactly into one task's output after another.
//   - When mapflow closes the requests, the program exits.

//go:embed pyrunner.py
var pyRunner string

// DefaultPython is the interpreter of python(...) functions when the env names none.
const DefaultPython = "python3"

// Descriptor numbers of the protocol's pipes in the worker process (ExtraFiles 0 and 1).
const (
	requestsFD  = 3
	responsesFD = 4
)

// markGrace is how long a response waits for the marks that end its task's output, and how long
// a dead process's pipes are read for what it wrote before it died.
const markGrace = 2 * time.Second

// stopGrace is how long a worker process has to exit once its requests are closed.
const stopGrace = 5 * time.Second

// PythonOf is the interpreter an env names with its python setting, else DefaultPython.
func PythonOf(env *lang.Env) string {
	p, _ := pythonSetting(env)
	return p
}

// pythonSetting is the env's python setting and where it is written; DefaultPython and ""
// when it has none.
func pythonSetting(env *lang.Env) (string, string) {
	if env != nil {
		if s, ok := env.Settings["python"]; ok {
			if p, ok := s.Value.(string); ok && p != "" {
				return p, s.Pos.String()
			}
		}
	}
	return DefaultPython, ""
}

// SetPython sets the executor's interpreter from the env's python setting.
func (e *Executor) SetPython(env *lang.Env) {
	e.Python, e.PythonAt = pythonSetting(env)
}

// UsePython sets the executor's interpreter from the common settings of a backend's options.
func (e *Executor) UsePython(c *Common) {
	e.Python, e.PythonAt = DefaultPython, ""
	if c.Python != "" {
		e.Python, e.PythonAt = c.Python, c.At("python")
	}
}

// taskError is the protocol's error object.
type taskError struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

func (e *taskError) Error() string {
	if e.Message == "" {
		return e.Type
	}
	return e.Type + ": " + e.Message
}

// response is one line a worker process writes: a ready message or a task's outcome.
type response struct {
	Ready  *bool           `json:"ready"`
	Marks  bool            `json:"marks"`
	Index  *int            `json:"index"`
	Result json.RawMessage `json:"result"`
	Error  *taskError      `json:"error"`
}

// respLine is a line read from the responses pipe, and when it arrived.
type respLine struct {
	data    []byte
	at      time.Time
	tooLong bool
}

// warmProc is one running worker process.
type warmProc struct {
	cmd       *exec.Cmd
	pgid      int
	dir       string // its working directory, removed when it stops
	requests  chan []byte
	writeDone chan struct{}
	reqW      *os.File
	respR     *os.File
	responses chan respLine // closed when the responses pipe ends
	exited    chan struct{} // closed when the process has exited
	stdout    *markStream
	stderr    *markStream
	marks     bool
	sent      int // requests sent, for recycle
	// startOut and startErr are what it wrote while starting, given to its first task.
	startOut, startErr []byte
	first              bool
	stopOnce           sync.Once
}

// startWarm starts the worker process of spec and waits for its ready message, at most
// e.Job.Timeout. A failure to start or to get ready is a *taskError (FileNotFoundError,
// ImportError, SyntaxError, TimeoutError, WorkerLost...).
func (e *Executor) startWarm(ctx context.Context, spec *lang.Warm) (*warmProc, error) {
	var args []string
	switch spec.Kind {
	case "python":
		python := e.Python
		if python == "" {
			python = DefaultPython
		}
		if strings.ContainsRune(python, '/') && !filepath.IsAbs(python) {
			// .venv/bin/python3 is relative to the job file's directory (its shipped copy
			// on a remote worker), not to the worker's own.
			python = filepath.Join(e.ShipDir, python)
		}
		args = []string{python, "-c", pyRunner, spec.ModuleDir(), spec.ModuleName(), spec.Function}
	default:
		args = spec.Args
	}
	dir, err := e.prepareDir(Task{Name: "worker"}, 0)
	if err != nil {
		if dir != "" {
			os.RemoveAll(dir)
		}
		return nil, &taskError{Type: "OSError", Message: fmt.Sprintf("prepare the worker's directory: %v", err)}
	}
	p, err := e.spawn(args, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.awaitReady(ctx, e.Job.Timeout, spec); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// spawn starts the program with the protocol's pipes.
func (e *Executor) spawn(args []string, dir string) (*warmProc, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	reqR, reqW, err1 := pipe()
	respR, respW, err2 := pipe()
	outR, outW, err3 := pipe()
	errR, errW, err4 := pipe()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		closeAll()
		return nil, &taskError{Type: "OSError", Message: err.Error()}
	}
	var token [16]byte
	_, _ = rand.Read(token[:])
	mark := "\x1emapflow-end-" + hex.EncodeToString(token[:]) + "\x1e"

	c := exec.Command(args[0], args[1:]...)
	c.Dir = dir
	c.Env = append(e.baseEnv(),
		"MAPFLOW_JOB="+e.Job.Name,
		"MAPFLOW_PROTOCOL=1",
		"MAPFLOW_REQUESTS_FD="+strconv.Itoa(requestsFD),
		"MAPFLOW_RESPONSES_FD="+strconv.Itoa(responsesFD),
		"MAPFLOW_MARK="+mark,
		"PYTHONDONTWRITEBYTECODE=1",
	)
	c.Stdout, c.Stderr = outW, errW
	c.ExtraFiles = []*os.File{reqR, respW}
	c.SysProcAttr = newProcAttr()
	if err := c.Start(); err != nil {
		closeAll()
		return nil, &taskError{Type: startErrorClass(err), Message: fmt.Sprintf("start %q: %v", args[0], unwrapStart(err))}
	}
	// The child has its ends; keep ours.
	reqR.Close()
	respW.Close()
	outW.Close()
	errW.Close()

	max := e.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	p := &warmProc{
		cmd: c, pgid: c.Process.Pid, dir: dir,
		requests: make(chan []byte, 256), writeDone: make(chan struct{}),
		reqW: reqW, respR: respR,
		responses: make(chan respLine, 256),
		exited:    make(chan struct{}),
		stdout:    newMarkStream([]byte(mark), max),
		stderr:    newMarkStream([]byte(mark), max),
		first:     true,
	}
	go p.stdout.pump(outR)
	go p.stderr.pump(errR)
	go p.readResponses()
	go p.writeRequests()
	go func() {
		c.Wait()
		close(p.exited)
	}()
	return p, nil
}

// awaitReady reads the ready message.
func (p *warmProc) awaitReady(ctx context.Context, timeout time.Duration, spec *lang.Warm) error {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	what := "the worker"
	if spec.Kind == "python" {
		what = fmt.Sprintf("module %s", spec.ModuleName())
	}
	select {
	case line, ok := <-p.responses:
		if !ok {
			break
		}
		var msg response
		if err := json.Unmarshal(line.data, &msg); err != nil || msg.Ready == nil {
			return &taskError{Type: "ProtocolError", Message: fmt.Sprintf("the worker's first message is not a ready message: %.200q", line.data)}
		}
		if !*msg.Ready {
			if msg.Error == nil {
				return &taskError{Type: "RuntimeError", Message: "the worker said it is not ready, without an error"}
			}
			return msg.Error
		}
		p.marks = msg.Marks
		var ok1, ok2 bool
		p.startOut, ok1 = p.stdout.next(p.marks)
		p.startErr, ok2 = p.stderr.next(p.marks)
		p.marks = p.marks && ok1 && ok2
		return nil
	case <-deadline:
		return &taskError{Type: "TimeoutError", Message: fmt.Sprintf("%s did not load within the %s timeout", what, timeout)}
	case <-ctx.Done():
		return &taskError{Type: "Canceled", Message: "canceled while the worker started"}
	}
	// The process ended before it was ready.
	p.kill()
	tail := lastLines(p.stderr.rest(), stderrTailLines)
	return &taskError{Type: "WorkerLost", Message: what + " exited before it was ready: " + p.exitStatus(), Traceback: tail}
}

// readResponses reads the responses pipe, a line at a time.
func (p *warmProc) readResponses() {
	defer close(p.responses)
	br := bufio.NewReaderSize(p.respR, 64<<10)
	for {
		line, tooLong, err := readLine(br, MaxResultLine+1<<10)
		if len(line) > 0 || tooLong {
			p.responses <- respLine{data: line, at: time.Now(), tooLong: tooLong}
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its newline, keeping at most max bytes of it.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		part, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(part) > max+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, part...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return line, tooLong, err
	}
}

// writeRequests writes the batches of requests the slot sends, so that a process that does not
// read (a task that hangs) never blocks the slot.
func (p *warmProc) writeRequests() {
	defer close(p.writeDone)
	for b := range p.requests {
		if _, err := p.reqW.Write(b); err != nil {
			for range p.requests { // drain: the process is gone
			}
			return
		}
	}
	p.reqW.Close() // no more requests: the process exits
}

// send queues a batch of requests.
func (p *warmProc) send(batch []byte, n int) {
	p.sent += n
	p.requests <- batch
}

// close asks the process to exit by closing its requests.
func (p *warmProc) closeRequests() {
	p.stopOnce.Do(func() { close(p.requests) })
}

// stop ends the process: gracefully (its requests closed, up to stopGrace to exit), then its
// whole process group killed. It returns when the process has exited.
func (p *warmProc) stop() {
	p.closeRequests()
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
	}
	p.kill()
}

// kill kills the process group and waits for the process, and for its pipes to end (at most
// markGrace when a process that left the group holds them).
func (p *warmProc) kill() {
	p.closeRequests()
	killGroup(p.pgid)
	<-p.exited
	killGroup(p.pgid) // what it started meanwhile
	deadline := time.Now().Add(markGrace)
	for _, s := range []*markStream{p.stdout, p.stderr} {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-s.closed:
		case <-t.C:
			s.abandon()
		}
		t.Stop()
	}
	p.respR.SetReadDeadline(time.Now().Add(markGrace))
	if p.dir != "" {
		os.RemoveAll(p.dir)
		p.dir = ""
	}
}

// exitStatus says how the process ended.
func (p *warmProc) exitStatus() string {
	st := p.cmd.ProcessState
	if st == nil {
		return "it is still running"
	}
	if sig, ok := exitSignal(st); ok {
		return fmt.Sprintf("killed by signal %d (%s)", sig, syscall.Signal(sig))
	}
	return fmt.Sprintf("exit status %d", st.ExitCode())
}

// markStream reads one output stream of a worker process and cuts it at each mark into the
// output of one task after another, each kept to Max bytes at its head and tail.
type markStream struct {
	mark    []byte
	max     int
	mu      sync.Mutex
	cur     *BoundedBuffer
	carry   []byte // the end of what was read, which may be the start of a mark
	done    [][]byte
	eof     bool
	changed chan struct{}
	closed  chan struct{}
	file    *os.File
}

func newMarkStream(mark []byte, max int) *markStream {
	return &markStream{mark: mark, max: max, changed: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (m *markStream) pump(f *os.File) {
	m.mu.Lock()
	m.file = f
	m.mu.Unlock()
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			m.feed(buf[:n])
		}
		if err != nil {
			break
		}
	}
	f.Close()
	m.mu.Lock()
	m.write(m.carry)
	m.carry = nil
	m.eof = true
	m.mu.Unlock()
	m.notify()
	close(m.closed)
}

// abandon stops reading a pipe that a process outside the group still holds.
func (m *markStream) abandon() {
	m.mu.Lock()
	f := m.file
	m.mu.Unlock()
	if f != nil {
		f.SetReadDeadline(time.Now())
	}
	<-m.closed
}

func (m *markStream) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *markStream) write(p []byte) {
	if len(p) == 0 {
		return
	}
	if m.cur == nil {
		m.cur = NewBoundedBuffer(m.max)
	}
	m.cur.Write(p)
}

func (m *markStream) feed(p []byte) {
	m.mu.Lock()
	data := p
	if len(m.carry) > 0 {
		data = append(m.carry, p...)
		m.carry = nil
	}
	marked := false
	for {
		i := bytes.Index(data, m.mark)
		if i < 0 {
			break
		}
		m.write(data[:i])
		var seg []byte
		if m.cur != nil {
			seg = m.cur.Bytes()
			m.cur = nil
		}
		m.done = append(m.done, seg)
		data = data[i+len(m.mark):]
		marked = true
	}
	// Hold back the longest end of data that may begin a mark.
	keep := 0
	for k := min(len(data), len(m.mark)-1); k > 0; k-- {
		if bytes.HasPrefix(m.mark, data[len(data)-k:]) {
			keep = k
			break
		}
	}
	m.write(data[:len(data)-keep])
	if keep > 0 {
		m.carry = append([]byte(nil), data[len(data)-keep:]...)
	}
	m.mu.Unlock()
	if marked {
		m.notify()
	}
}

// next returns the output of the next task: with marks, up to its mark (waiting up to
// markGrace for it); without, all that was read so far. ok is false when the mark did not come.
func (m *markStream) next(marks bool) (seg []byte, ok bool) {
	deadline := time.Now().Add(markGrace)
	for {
		m.mu.Lock()
		if len(m.done) > 0 {
			seg := m.done[0]
			m.done[0] = nil
			m.done = m.done[1:]
			m.mu.Unlock()
			return seg, true
		}
		if !marks || m.eof {
			seg := m.takeLocked()
			m.mu.Unlock()
			return seg, true
		}
		m.mu.Unlock()
		wait := time.Until(deadline)
		if wait <= 0 {
			return m.rest(), false
		}
		t := time.NewTimer(wait)
		select {
		case <-m.changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// rest returns everything read and not yet taken.
func (m *markStream) rest() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []byte
	for _, seg := range m.done {
		out = append(out, seg...)
	}
	m.done = nil
	return append(out, m.takeLocked()...)
}

func (m *markStream) takeLocked() []byte {
	var seg []byte
	if m.cur != nil {
		seg = m.cur.Bytes()
		m.cur = nil
	}
	if len(m.carry) > 0 {
		seg = append(seg, m.carry...)
		m.carry = nil
	}
	return seg
}

// decodeResponse parses a task's response line.
func decodeResponse(line respLine) (*response, error) {
	if line.tooLong {
		return nil, fmt.Errorf("a response longer than %d MiB", MaxResultLine>>20)
	}
	if msg, ok := decodeResult(line.data); ok {
		return msg, nil
	}
	var msg response
	if err := json.Unmarshal(line.data, &msg); err != nil {
		return nil, fmt.Errorf("a response that is not JSON (%v): %.200q", err, line.data)
	}
	if msg.Index == nil {
		return nil, fmt.Errorf("a response without an index: %.200q", line.data)
	}
	return &msg, nil
}

// decodeResult reads the form the Python runner writes a result in, {"index":N,"result":R},
// without reflection; ok is false for any other line.
func decodeResult(data []byte) (*response, bool) {
	const head, mid = `{"index":`, `,"result":`
	if !bytes.HasPrefix(data, []byte(head)) || data[len(data)-1] != '}' {
		return nil, false
	}
	rest := data[len(head):]
	i := 0
	for i < len(rest) && i < 19 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || (i > 1 && rest[0] == '0') || !bytes.HasPrefix(rest[i:], []byte(mid)) {
		return nil, false
	}
	index, err := strconv.Atoi(string(rest[:i]))
	if err != nil {
		return nil, false
	}
	result := rest[i+len(mid) : len(rest)-1]
	if !json.Valid(result) || !utf8.Valid(result) {
		return nil, false
	}
	return &response{Index: &index, Result: result}, true
}

// Call runs one call of spec's function with params as its keyword arguments in a worker
// process of its own, and returns the result: what a Python combiner does in the driver. Its
// output goes to out.
func (e *Executor) Call(ctx context.Context, spec *lang.Warm, params map[string]any, out io.Writer) (any, error) {
	p, err := e.startWarm(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	req, err := AppendJSON([]byte(`{"index":0,"name":"combine","attempt":1,"params":`), params)
	if err != nil {
		return nil, fmt.Errorf("the arguments cannot be sent as JSON: %w", err)
	}
	p.send(append(req, "}\n"...), 1)
	var line respLine
	var ok bool
	select {
	case line, ok = <-p.responses:
	case <-p.exited:
		// Take what it wrote before it died, if anything.
		select {
		case line, ok = <-p.responses:
		case <-time.After(markGrace):
		}
	case <-ctx.Done():
		p.kill()
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if out != nil {
		o, _ := p.stdout.next(p.marks)
		e, _ := p.stderr.next(p.marks)
		out.Write(append(p.startOut, o...))
		out.Write(append(p.startErr, e...))
	}
	if !ok {
		p.kill()
		return nil, &taskError{Type: "WorkerLost", Message: "the worker " + p.exitStatus() + " during the call"}
	}
	msg, err := decodeResponse(line)
	if err != nil {
		return nil, &taskError{Type: "ProtocolError", Message: err.Error()}
	}
	if msg.Error != nil {
		return nil, msg.Error
	}
	if msg.Result == nil {
		return nil, nil
	}
	return DecodeJSON(msg.Result), nil
}

// TaskError returns the exception, message and traceback of an error from a worker process
// (Python's own exception, say), or false when err is not one.
func TaskError(err error) (exception, message, traceback string, ok bool) {
	var te *taskError
	if errors.As(err, &te) {
		return te.Type, te.Message, te.Traceback, true
	}
	return "", "", "", false
}
