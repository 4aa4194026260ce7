package runtime

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mapflow/mapflow/lang"
)

// Slot is one worker goroutine's share of an Executor: it runs the tasks it is given one after
// another (for a warm function, several in flight to its own worker process). Backends make
// one Slot per task that may run at once, and Close it when done.
type Slot struct {
	e      *Executor
	caller *lang.Caller
	warm   *warmSlot
}

// NewSlot returns a Slot of e.
func (e *Executor) NewSlot() *Slot {
	s := &Slot{e: e, caller: e.Job.Func.NewCaller()}
	if spec := e.Job.Func.WarmFunc(); spec != nil {
		s.warm = &warmSlot{e: e, spec: spec}
	}
	return s
}

// RunAll runs every task received on tasks until the channel is closed and drained, or ctx
// ends, reporting each as Executor.Run does. A warm function's worker process outlives RunAll,
// for the next call; Close stops it.
func (s *Slot) RunAll(ctx context.Context, tasks <-chan Task, r Reporter) {
	if s.warm != nil {
		s.warm.run(ctx, tasks, r)
		return
	}
	for ctx.Err() == nil {
		var t Task
		var ok bool
		// A receive that succeeds at once skips the costlier two-way select.
		select {
		case t, ok = <-tasks:
		default:
			select {
			case <-ctx.Done():
				return
			case t, ok = <-tasks:
			}
		}
		if !ok {
			return
		}
		s.e.Run(ctx, s.caller, t, r)
	}
}

// Close stops the slot's worker process, if it has one.
func (s *Slot) Close() {
	if s.warm != nil && s.warm.proc != nil {
		s.warm.proc.stop()
		s.warm.proc = nil
	}
}

// Preflight starts a warm function's first worker process and waits until it is ready, so
// that an interpreter that is missing or a module that does not import is one error before any
// task runs. The process is kept for the first Slot. It does nothing for other functions.
func (e *Executor) Preflight(ctx context.Context) error {
	spec := e.Job.Func.WarmFunc()
	if spec == nil {
		return nil
	}
	p, err := e.startWarm(ctx, spec)
	if err != nil {
		exc, _, tb, _ := TaskError(err)
		if spec.Kind == "python" && e.PythonAt != "" && (exc == "FileNotFoundError" || exc == "PermissionError") {
			return fmt.Errorf("%s: python = %q: %w (name an interpreter that exists, or leave the setting out for python3 on PATH)", e.PythonAt, e.Python, err)
		}
		if tb != "" {
			return fmt.Errorf("%s: %s: %w\n%s", spec.Pos, describeWarm(spec, e.Python), err, indent(tb))
		}
		return fmt.Errorf("%s: %s: %w", spec.Pos, describeWarm(spec, e.Python), err)
	}
	e.idleMu.Lock()
	e.idle = append(e.idle, p)
	e.idleMu.Unlock()
	return nil
}

// indent indents each line of text by two spaces.
func indent(text string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n  ")
}

// describeWarm names a warm function the way the job file wrote it.
func describeWarm(spec *lang.Warm, python string) string {
	if spec.Kind == "python" {
		if python == "" {
			python = DefaultPython
		}
		return fmt.Sprintf("python(%q, %q) with %s", spec.Module, spec.Function, python)
	}
	quoted := make([]string, len(spec.Args))
	for i, a := range spec.Args {
		quoted[i] = strconv.Quote(a)
	}
	return "serve(" + strings.Join(quoted, ", ") + ")"
}

// takeIdle returns a started process kept by Preflight, or nil.
func (e *Executor) takeIdle() *warmProc {
	e.idleMu.Lock()
	defer e.idleMu.Unlock()
	if n := len(e.idle); n > 0 {
		p := e.idle[n-1]
		e.idle = e.idle[:n-1]
		return p
	}
	return nil
}

// stopIdle stops the processes no Slot took.
func (e *Executor) stopIdle() {
	for p := e.takeIdle(); p != nil; p = e.takeIdle() {
		p.stop()
	}
}

// A warm slot keeps a window of requests in flight to its process: enough to cover
// windowCover of work at the tasks' recent pace, so that fast tasks do not wait for a round
// trip each, and one at a time when tasks are slow, so that a slow task holds no others
// behind it.
const (
	windowCover = 2 * time.Millisecond
	maxWindow   = 64
	// startedAfter: a task that has been the head of the window this long reports
	// TaskStarted, so the catalog shows a slow task Running, however fast the ones before it.
	startedAfter = 50 * time.Millisecond
)

// flight is a task sent to the process.
type flight struct {
	t       Task
	attempt int
	start   time.Time // when it became the head: its predecessor's response
	shown   bool      // TaskStarted was reported
}

// warmSlot runs a warm function's tasks on one worker process at a time.
type warmSlot struct {
	e    *Executor
	spec *lang.Warm
	proc *warmProc
	// startErr is why the process cannot start, when that does not mend (the interpreter is
	// missing, the module raised while it loaded): every task fails with it, unretried,
	// rather than starting a process again for each. permanent is set while they do.
	startErr  *taskError
	permanent bool
	pending   []Task // to send, first first; Attempt is the attempts made
	inflight  []flight
	avg       time.Duration // moving average of a task's time
	buf       []byte
	// lastDone is the task whose response came last (when answered), so that a second
	// response for it is passed over rather than taken for the next task's.
	lastDone int
	answered bool
}

func (s *warmSlot) window() int {
	if s.avg <= 0 {
		return 1
	}
	return max(1, min(maxWindow, int(windowCover/s.avg)))
}

func (s *warmSlot) run(ctx context.Context, tasks <-chan Task, r Reporter) {
	in := tasks
	for {
		// Take what is there, up to the window.
		for in != nil && len(s.pending)+len(s.inflight) < s.window() {
			select {
			case t, ok := <-in:
				s.take(t, ok, &in, r)
				continue
			default:
			}
			break
		}
		if len(s.pending) == 0 && len(s.inflight) == 0 {
			if in == nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case t, ok := <-in:
				s.take(t, ok, &in, r)
			}
			continue
		}
		if ctx.Err() != nil {
			s.killProc()
			return
		}
		if s.proc == nil && len(s.pending) > 0 {
			if err := s.start(ctx); err != nil {
				if ctx.Err() != nil {
					continue // canceled: the loop ends
				}
				// A start that timed out or died may do better next time: it fails the task
				// it was started for (an attempt, retried as any) and the next one tries again.
				t := s.pending[0]
				s.pending = s.pending[1:]
				s.permanent = s.startErr != nil
				s.fail(t, t.Attempt+1, time.Now(), err, r)
				s.permanent = false
				continue
			}
		}
		s.send(r)
		if len(s.inflight) == 0 {
			// The process has run its `recycle` tasks: a fresh one takes the rest.
			if s.proc != nil {
				s.proc.stop()
				s.proc = nil
			}
			continue
		}
		s.wait(ctx, &in, r)
	}
}

// take handles a receive from the backend's channel: a task, or the channel's end.
func (s *warmSlot) take(t Task, ok bool, in *<-chan Task, r Reporter) {
	if !ok {
		*in = nil
		return
	}
	s.accept(t, r)
}

// accept takes a task from the backend: a parameter set that lacks a parameter fails at once.
func (s *warmSlot) accept(t Task, r Reporter) {
	for _, p := range s.e.Job.Func.Params {
		if _, ok := t.Params[p]; !ok {
			// Not retried: it would fail again.
			now := time.Now()
			res := s.result(t, t.Attempt+1, now, now, &taskError{Type: "KeyError",
				Message: fmt.Sprintf("parameter %q is missing from this parameter set", p)}, nil)
			r.Report(Event{Kind: TaskFinished, Result: res})
			return
		}
	}
	s.pending = append(s.pending, t)
}

// start starts the slot's process, or says why it could not.
func (s *warmSlot) start(ctx context.Context) *taskError {
	if s.startErr != nil {
		return s.startErr
	}
	if p := s.e.takeIdle(); p != nil {
		s.proc = p
		return nil
	}
	p, err := s.e.startWarm(ctx, s.spec)
	if err == nil {
		s.proc = p
		return nil
	}
	te, ok := err.(*taskError)
	if !ok {
		te = &taskError{Type: "RuntimeError", Message: err.Error()}
	}
	switch {
	case ctx.Err() != nil:
		return te // canceled: the caller stops
	case te.Type != "TimeoutError" && te.Type != "WorkerLost" && te.Type != "Canceled":
		s.startErr = te
	}
	return te
}

// send writes requests for pending tasks, up to the window and the process's recycle limit.
func (s *warmSlot) send(r Reporter) {
	if s.proc == nil {
		return
	}
	n := 0
	buf := s.buf[:0]
	for len(s.pending) > 0 && len(s.inflight) < s.window() {
		if rc := s.e.Job.Recycle; rc > 0 && s.proc.sent+n >= rc {
			break
		}
		t := s.pending[0]
		s.pending = s.pending[1:]
		buf = s.appendRequest(buf, t)
		f := flight{t: t, attempt: t.Attempt + 1}
		if len(s.inflight) == 0 {
			f.start = time.Now()
		}
		s.inflight = append(s.inflight, f)
		n++
	}
	if n > 0 {
		s.proc.send(append([]byte(nil), buf...), n)
		s.buf = buf
	}
	if len(s.pending) == 0 {
		s.pending = nil
	}
}

// appendRequest appends t's request line: the function's parameters of its set.
func (s *warmSlot) appendRequest(b []byte, t Task) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(t.Index), 10)
	b = append(b, `,"name":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(t.Attempt+1), 10)
	b = append(b, `,"params":`...)
	params := s.e.Job.Func.Params
	if len(t.Params) == len(params) && t.ParamsJSON != nil {
		b = append(b, t.ParamsJSON...)
	} else {
		set := make(map[string]any, len(params))
		for _, p := range params {
			set[p] = t.Params[p]
		}
		var err error
		if b, err = AppendJSON(b, set); err != nil {
			b = append(b, "{}"...)
		}
	}
	return append(b, "}\n"...)
}

// started reports the head of the window as started: it has run for startedAfter.
func (s *warmSlot) started(r Reporter) {
	f := &s.inflight[0]
	if f.shown {
		return
	}
	f.shown = true
	res := NewResult()
	res.Index, res.Attempt, res.Host, res.Start = f.t.Index, f.attempt, s.e.Host, f.start
	r.Report(Event{Kind: TaskStarted, Result: res})
}

// wait waits for the next response, the process's end, the head's timeout, a new task or the
// end of ctx.
func (s *warmSlot) wait(ctx context.Context, in *<-chan Task, r Reporter) {
	var recv <-chan Task
	if len(s.pending)+len(s.inflight) < s.window() {
		recv = *in
	}
	var timeout, show <-chan time.Time
	if d := s.e.Job.Timeout; d > 0 {
		t := time.NewTimer(time.Until(s.inflight[0].start.Add(d)))
		defer t.Stop()
		timeout = t.C
	}
	if !s.inflight[0].shown {
		t := time.NewTimer(time.Until(s.inflight[0].start.Add(startedAfter)))
		defer t.Stop()
		show = t.C
	}
	p := s.proc
	select {
	case <-show:
		s.started(r)
	case <-ctx.Done():
		s.killProc()
	case t, ok := <-recv:
		s.take(t, ok, in, r)
	case line, ok := <-p.responses:
		if !ok {
			s.lost(r)
			return
		}
		s.respond(line, r)
	case <-p.exited:
		s.lost(r)
	case <-timeout:
		p.kill()
		s.drain(r)
		if s.proc != p {
			break // a broken response: respond dealt with the rest
		}
		s.proc = nil
		if len(s.inflight) == 0 {
			break // it answered as it was killed
		}
		head := s.inflight[0]
		s.inflight = s.inflight[1:]
		s.requeue()
		err := &taskError{Type: "TimeoutError", Message: fmt.Sprintf("attempt %d exceeded the %s timeout", head.attempt, s.e.Job.Timeout)}
		out, errOut := s.output(p, true)
		err.Traceback = lastLines(errOut, stderrTailLines)
		s.finish(head.t, head.attempt, head.start, time.Now(), err, &[2][]byte{out, errOut}, r)
	}
}

// respond handles the response line of the head of the window.
func (s *warmSlot) respond(line respLine, r Reporter) {
	p := s.proc
	head := s.inflight[0]
	msg, err := decodeResponse(line)
	if err == nil && *msg.Index != head.t.Index {
		if s.answered && *msg.Index == s.lastDone {
			return // a second response for the task before (its function wrote one itself)
		}
		err = fmt.Errorf("a response for task %d while task %d ran", *msg.Index, head.t.Index)
	}
	s.lastDone, s.answered = head.t.Index, true
	if err != nil {
		// A line that is not the protocol fails the task it came for; the process goes on
		// with the tasks it was sent (they may have run already: sending them again would
		// run them twice).
		s.inflight = s.inflight[1:]
		if len(s.inflight) > 0 {
			s.inflight[0].start = line.at
		}
		out, errOut := s.output(p, false)
		s.finish(head.t, head.attempt, head.start, line.at, &taskError{Type: "ProtocolError", Message: err.Error(),
			Traceback: lastLines(errOut, stderrTailLines)}, &[2][]byte{out, errOut}, r)
		return
	}
	s.inflight = s.inflight[1:]
	if len(s.inflight) > 0 {
		s.inflight[0].start = line.at
	}
	d := line.at.Sub(head.start)
	if s.avg == 0 {
		s.avg = max(d, time.Microsecond)
	} else {
		s.avg = (s.avg*7 + d) / 8
	}
	out, errOut := s.output(p, false)
	var te *taskError
	if msg.Error != nil {
		te = msg.Error
		if te.Type == "" {
			te.Type = "Error"
		}
		// Paths in the worker's directory are shown as the job file names them.
		if p.dir != "" {
			te.Traceback = strings.ReplaceAll(te.Traceback, p.dir+string(os.PathSeparator), "")
		}
	}
	res := s.result(head.t, head.attempt, head.start, line.at, te, &[2][]byte{out, errOut})
	if te == nil {
		res.Status = Completed
		res.ValueJSON = msg.Result
		if len(res.ValueJSON) == 0 {
			res.ValueJSON = []byte("null")
		}
		res.Value = DecodeJSON(res.ValueJSON)
		if !utf8.Valid(res.ValueJSON) {
			// Strings that are not UTF-8 are stored as JSON has them: with U+FFFD.
			res.ValueJSON, _ = MarshalJSON(res.Value)
		}
		r.Report(Event{Kind: TaskFinished, Result: res})
		return
	}
	s.report(head.t, res, r)
}

// output takes the next task's output from the process's streams; the first task gets what the
// process wrote while it started. A dead process's streams are read to their end.
func (s *warmSlot) output(p *warmProc, dead bool) (stdout, stderr []byte) {
	marks := p.marks && !dead
	if dead {
		stdout, stderr = p.stdout.rest(), p.stderr.rest()
	} else {
		var ok1, ok2 bool
		stdout, ok1 = p.stdout.next(marks)
		stderr, ok2 = p.stderr.next(marks)
		if !ok1 || !ok2 {
			// It said it marks its output, and did not: take output as it comes from now on.
			p.marks = false
		}
	}
	if p.first {
		p.first = false
		stdout = append(p.startOut, stdout...)
		stderr = append(p.startErr, stderr...)
	}
	return nonEmpty(stdout), nonEmpty(stderr)
}

// drain handles the responses a dead process wrote before it died.
func (s *warmSlot) drain(r Reporter) {
	p := s.proc
	for len(s.inflight) > 0 {
		line, ok := <-p.responses
		if !ok {
			return
		}
		s.respond(line, r)
		if s.proc != p {
			return // a broken response: respond dealt with the rest
		}
	}
}

// lost handles the end of the process: the responses it wrote count; the task it was running
// fails with WorkerLost; the tasks behind it go to a fresh process.
func (s *warmSlot) lost(r Reporter) {
	p := s.proc
	// The responses ended: the process is dying, or closed them (its exit status and last
	// words are worth the wait).
	select {
	case <-p.exited:
	case <-time.After(markGrace):
	}
	p.kill()
	s.drain(r)
	if s.proc != p {
		return
	}
	s.proc = nil
	if len(s.inflight) == 0 {
		return
	}
	head := s.inflight[0]
	s.inflight = s.inflight[1:]
	s.requeue()
	out, errOut := s.output(p, true)
	what := "the worker process"
	if s.spec.Kind == "python" {
		what = "the Python worker"
	}
	err := &taskError{Type: "WorkerLost", Message: fmt.Sprintf("%s running task %s (attempt %d) ended: %s",
		what, head.t.Name, head.attempt, p.exitStatus()), Traceback: lastLines(errOut, stderrTailLines)}
	s.finish(head.t, head.attempt, head.start, time.Now(), err, &[2][]byte{out, errOut}, r)
}

// requeue puts the tasks still in flight back in front of the pending ones: they never started.
func (s *warmSlot) requeue() {
	if len(s.inflight) == 0 {
		return
	}
	back := make([]Task, 0, len(s.inflight)+len(s.pending))
	for _, f := range s.inflight {
		back = append(back, f.t)
	}
	s.pending = append(back, s.pending...)
	s.inflight = nil
}

func (s *warmSlot) killProc() {
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
	s.inflight = nil
	s.pending = nil
}

// result makes the Result of an attempt.
func (s *warmSlot) result(t Task, attempt int, start, end time.Time, te *taskError, output *[2][]byte) *Result {
	res := NewResult()
	res.Index, res.Attempt, res.Host, res.Start, res.End = t.Index, attempt, s.e.Host, start, end
	if output != nil {
		res.Stdout, res.Stderr = output[0], output[1]
	}
	if te != nil {
		res.Status = Failed
		res.Exception, res.Message, res.Traceback = te.Type, te.Message, te.Traceback
	}
	return res
}

func (s *warmSlot) fail(t Task, attempt int, at time.Time, te *taskError, r Reporter) {
	s.finish(t, attempt, at, at, te, nil, r)
}

func (s *warmSlot) finish(t Task, attempt int, start, end time.Time, te *taskError, output *[2][]byte, r Reporter) {
	s.report(t, s.result(t, attempt, start, end, te, output), r)
}

// report reports a failed attempt: a retry when attempts are left, else the task's end. A
// process that cannot start is not retried.
func (s *warmSlot) report(t Task, res *Result, r Reporter) {
	// res belongs to the recorder once reported: read it before.
	if attempt := res.Attempt; attempt < 1+s.e.Job.Retries && !s.permanent {
		r.Report(Event{Kind: TaskRetrying, Result: res})
		t.Attempt = attempt
		s.pending = append([]Task{t}, s.pending...)
		return
	}
	r.Report(Event{Kind: TaskFinished, Result: res})
}
