// Package runtime runs a checked job (*lang.Job): it plans the tasks, hands them to a Backend,
// records every task in the catalog, and combines the results.
//
// # The pieces
//
// Run and Resume are the driver. Run creates the job's catalog row, then starts three
// things side by side: the planner, which streams the params into a bounded channel of Tasks
// (each parameter set encoded to JSON once, here); the Backend, which runs them; and the
// recorder, which receives the backend's events through the Reporter it is given. A
// heartbeat goroutine stamps the job row every second and turns a cancel request (`mapflow
// cancel`) into the cancellation of the run. When the backend returns, the driver combines
// the successful results and writes the job's final row.
//
// The Executor is the one code path that runs a task, whatever the backend: the local
// backend's goroutines call it, and so will `mapflow worker` in a YARN container or on an
// EC2 host. It evaluates the function; when the body is an exec(...) call it runs the program
// without a shell in a process group of its own, in a fresh directory holding the shipped
// files, with output kept in BoundedBuffers, retrying failed attempts and killing the whole
// group on timeout or cancel.
//
// # Warm workers
//
// A python(...) or serve(...) function runs in long-lived worker processes instead: each
// Slot (one per task that may run at once, in the local backend and in `mapflow worker`
// alike) starts one process and keeps it for task after task, speaking the line protocol of
// warm.go over two extra descriptors, so the process's standard output and error stay the
// tasks' logs. The process writes a random mark on both streams after each task, before its
// response, and markStream cuts the streams there: each task gets exactly its own output.
// The slot keeps a window of requests in flight, sized from the recent time per task (one
// request when tasks take milliseconds, up to 64 when they take microseconds); the head of
// the window is the running task, timed from its predecessor's response. When the process
// dies, the head fails (WorkerLost) and the rest go to a fresh process uncharged; a timeout
// kills the process group the same way. The Python runner (pyrunner.py) is embedded and run
// with `python3 -c`, so no host needs anything installed.
//
// # Recording a million tasks
//
// A fast job must not cost one catalog write per event, nor one transaction per task. The
// planner registers each task with the recorder before the backend can see it; events are
// appended to a queue under a mutex (cheaper than a channel send per event, and Report blocks
// when the queue is full so memory stays bounded). The recorder goroutine keeps the rows of
// unfinished tasks in memory and writes a task's row once, when it finishes, unless its
// Pending or Running state has stayed unwritten for 200 ms: so a slow exec job shows its
// Pending and Running rows while an expression job writes each row once. Rows go to a writer
// goroutine in batches of up to 50,000 per transaction; while the writer is busy the next
// batch grows, so batches size themselves to the catalog's pace. Rows are upserts, so a
// task's final row replaces any earlier one.
//
// # Cancel and resume
//
// A cancelled run stops the backend; every task that did not finish gets a Canceled row,
// including those never handed to the backend (the planner goes on reading the params to
// record them, up to 10,000 of them: past that the job's error names the first task without a
// row), so the catalog holds every task of a job that was not canceled. Resume re-parses the job
// from the script text stored in its row and runs, under the same job id, only the tasks
// that are not Completed; a driver killed with SIGKILL loses at most the tasks it had not
// yet recorded as Completed, which run again.
//
// Backends report task failures as results; a Backend's error means the backend itself
// failed. The conformance suite every backend passes is in runtime/backendtest.
package runtime
