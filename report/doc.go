// Package report writes a job's HTML report (`mapflow report`): one self-contained page, built
// from the catalog alone, that opens offline and can be attached to a ticket.
//
// # What the page shows
//
// A header with the job's identity and outcome (name and id, env and backend, status, counts
// by status, wall time, submitted/started/finished, the script's path, sha256 and git commit,
// the combined result); a timeline with one lane per host and worker slot and one bar per task
// attempt, coloured by status, with the task's name, params, run time, attempt and exception on
// hover; a histogram of run times and the ten slowest tasks; a table of the failed tasks with
// their exception, message and traceback; and the job file itself.
//
// # Design
//
// The catalog does not record which worker slot of a host ran an attempt, so the lanes are
// rebuilt from the times: each host's attempts, in start order, are packed greedily into the
// fewest slots that never hold two attempts at once. A host that ran k tasks at a time shows
// k lanes; retries and re-runs after a lost worker are bars of their own (earlier attempts come
// from the task_attempts table).
//
// Everything that is small (header, histogram, tables) is rendered in Go with html/template,
// so every user value is escaped and all but the timeline reads without JavaScript. The
// timeline can hold hundreds of thousands of bars, so it is not one DOM node per bar: the
// attempts are embedded as columnar JSON (starts delta-encoded, times in whole microseconds,
// task names stored as a prefix when they follow FUNC-INDEX, params clipped to a per-task
// budget, exception texts interned) in a <script type="application/json"> element, and an
// inline script draws them on a canvas. encoding/json escapes <, > and & inside strings, so a
// param cannot close the element. A Content-Security-Policy allows only the page's own script
// and style (by hash) and data: images, so nothing is fetched and injected markup cannot run.
//
// The drawing script also keeps what it drew in the DOM: the canvas carries data-drawn counts,
// and for up to 5,000 attempts an off-screen list (#timeline-bars) has one item per bar with
// its task, status, attempt, lane and pixel rectangle. Screen readers read that list, and the
// browser tests (browser_test.go, headless Chromium through chromedp) check it against the
// canvas's pixels and the hover.
//
// Reading is streamed: a task row is reduced to what the page shows as it arrives (its params
// clipped to the budget, its attempt to a 40-byte bar), so a job of a million tasks is
// reported in a few seconds and a few hundred megabytes.
package report
