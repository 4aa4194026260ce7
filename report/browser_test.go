package report

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser tests open reports in a headless Chromium, as a user would, and check what the
// page shows: what the timeline drew (its accessible twins and the canvas's pixels), the hover,
// the failures table, and that the page logs no error. They skip when no Chromium is installed
// (scripts/chromium installs Debian's), unless MAPFLOW_REQUIRE_BROWSER=1, as in CI. Screenshots
// go to the test's artifact directory (go test -artifacts keeps it), or to
// $MAPFLOW_TEST_ARTIFACTS when set.

// chromium finds a Chromium binary: $MAPFLOW_CHROMIUM, else one on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MAPFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MAPFLOW_REQUIRE_BROWSER") == "1" {
		t.Fatal("no Chromium found, and MAPFLOW_REQUIRE_BROWSER=1 forbids skipping: install it with scripts/chromium, or set MAPFLOW_CHROMIUM")
	}
	t.Skip("no Chromium found: install it with scripts/chromium (MAPFLOW_REQUIRE_BROWSER=1 makes this a failure)")
	return ""
}

// browser is one headless Chromium tab that records every error the page reports.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	path := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.WindowSize(width, height))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	b := &browser{t: t}
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(bcancel)
	b.ctx = bctx
	return b
}

// listen runs in the tab's event loop: it notes problems and returns at once.
func (b *browser) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.note("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			b.note("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			b.note("browser log (%s): %s", ev.Entry.Source, ev.Entry.Text)
		}
	case *cdppage.EventJavascriptDialogOpening:
		b.note("the page opened a %s dialog: %q", ev.Type, ev.Message)
		go chromedp.Call(b.ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{})
	}
}

func (b *browser) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// checkConsole fails the test for each problem the page reported.
func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page: %s", p)
	}
}

// open loads the report at path and waits until the timeline is drawn.
func (b *browser) open(path string) {
	b.t.Helper()
	u := url.URL{Scheme: "file", Path: path}
	if err := chromedp.Do(b.ctx, chromedp.Navigate(u.String())); err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS("#timeline[data-drawn]"))); err != nil {
		b.checkConsole()
		b.t.Fatalf("open %s: the timeline was not drawn: %v", path, err)
	}
}

func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// drawnBar is an item of #timeline-bars: a bar the page drew, where it drew it.
type drawnBar struct {
	Task, Status, Lane string
	Attempt            int
	X, Y, W, H         float64
}

func (b *browser) drawnBars() []drawnBar {
	b.t.Helper()
	var bars []drawnBar
	for _, a := range run(b, chromedp.AttributesAll(chromedp.CSSAll("#timeline-bars li"))) {
		num := func(k string) float64 {
			f, err := strconv.ParseFloat(a[k], 64)
			if err != nil {
				b.t.Fatalf("bar %v: %s: %v", a, k, err)
			}
			return f
		}
		bars = append(bars, drawnBar{Task: a["data-task"], Status: a["data-status"], Lane: a["data-lane"],
			Attempt: int(num("data-attempt")), X: num("data-x"), Y: num("data-y"), W: num("data-w"), H: num("data-h")})
	}
	return bars
}

// checkPixel checks that the canvas is painted in status's colour (from the page's legend) at
// the middle of bar.
func (b *browser) checkPixel(bar drawnBar, status string) {
	b.t.Helper()
	x, y := bar.X+bar.W/2, bar.Y+bar.H/2
	got := run(b, chromedp.Evaluate[[]int](fmt.Sprintf(`(() => {
		const c = document.getElementById("timeline"), d = window.devicePixelRatio;
		return Array.from(c.getContext("2d").getImageData(Math.floor(%g * d), Math.floor(%g * d), 1, 1).data);
	})()`, x, y)))
	css := run(b, chromedp.Evaluate[string](fmt.Sprintf(
		`getComputedStyle(document.querySelector(".legend .s-%s")).backgroundColor`, status)))
	var want [3]int
	if _, err := fmt.Sscanf(css, "rgb(%d, %d, %d)", &want[0], &want[1], &want[2]); err != nil {
		b.t.Fatalf("legend colour of %s: %q: %v", status, css, err)
	}
	for i := range want {
		if d := got[i] - want[i]; d < -30 || d > 30 {
			b.t.Errorf("pixel at (%.1f, %.1f), the middle of bar %+v, is %v; want %s's colour %v", x, y, bar, got, status, want)
			return
		}
	}
}

// canvasAt scrolls the timeline into view and returns where its canvas is in the viewport.
func (b *browser) canvasAt() (left, top float64) {
	b.t.Helper()
	run(b, chromedp.ScrollIntoView(chromedp.ID("timeline")))
	r := run(b, chromedp.Evaluate[[]float64](`(() => {
		const r = document.getElementById("timeline").getBoundingClientRect();
		return [r.left, r.top];
	})()`))
	return r[0], r[1]
}

// hover moves the mouse to the middle of bar and returns the tooltip's text.
func (b *browser) hover(bar drawnBar) string {
	b.t.Helper()
	left, top := b.canvasAt()
	run(b, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, left+bar.X+bar.W/2, top+bar.Y+bar.H/2))
	run(b, chromedp.WaitVisible(chromedp.ID("timeline-tip")))
	return run(b, chromedp.Text(chromedp.ID("timeline-tip")))
}

// screenshot saves the whole page as NAME.png among the test's artifacts.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := run(b, chromedp.FullScreenshot(100))
	dir := os.Getenv("MAPFLOW_TEST_ARTIFACTS")
	if dir == "" {
		dir = b.t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d KB)", path, len(png)>>10)
}

// TestBrowserAddFailure is the acceptance test: the seed's failure job, whose second
// task fails with a TypeError, seen in a browser.
func TestBrowserAddFailure(t *testing.T) {
	b := newBrowser(t, 1280, 1000)
	cat, job := runJob(t, "../examples/add_failure.mf")
	path, _ := writeReport(t, cat, job)
	b.open(path)

	bars := b.drawnBars()
	if len(bars) != 3 {
		t.Fatalf("the timeline drew %d bars, want 3: %+v", len(bars), bars)
	}
	var failed []drawnBar
	for _, bar := range bars {
		if bar.Status == "Failed" {
			failed = append(failed, bar)
		} else if bar.Status != "Completed" {
			t.Errorf("bar %+v: status %q, want Completed or Failed", bar, bar.Status)
		}
	}
	if len(failed) != 1 || failed[0].Task != "add-1" || failed[0].Attempt != 1 {
		t.Fatalf("failed bars %+v, want one, of add-1's first attempt", failed)
	}
	b.checkPixel(failed[0], "Failed")
	if drawn := run(b, chromedp.AttributeValue(chromedp.ID("timeline"), "data-drawn-failed")); drawn.Value != "1" {
		t.Errorf("data-drawn-failed = %q, want 1", drawn.Value)
	}

	tip := b.hover(failed[0])
	for _, want := range []string{"add-1", "attempt 1", "Failed", `{"x":null,"y":10}`,
		"TypeError: unsupported operand types for +: null and int"} {
		if !strings.Contains(tip, want) {
			t.Errorf("hovering the failed bar shows %q, without %q", tip, want)
		}
	}

	failures := run(b, chromedp.Text(chromedp.ID("failures")))
	for _, want := range []string{"add-1", "TypeError", "unsupported operand types for +: null and int", "add_failure.mf:"} {
		if !strings.Contains(failures, want) {
			t.Errorf("the failures table has no %q:\n%s", want, failures)
		}
	}
	counts := run(b, chromedp.Text(chromedp.ID("counts")))
	if !strings.Contains(counts, "2 Completed") || !strings.Contains(counts, "1 Failed") {
		t.Errorf("counts %q, want 2 Completed and 1 Failed", counts)
	}
	hist := run(b, chromedp.AttributesAll(chromedp.CSSAll("#histogram rect.hbar")))
	n := 0
	for _, a := range hist {
		c, _ := strconv.Atoi(a["data-count"])
		n += c
	}
	if n != 3 {
		t.Errorf("the histogram counts %d tasks, want 3", n)
	}
	b.screenshot("add_failure")
	b.checkConsole()
}

// TestBrowserEscaping: params that look like markup stay text, in the tables and the hover,
// and cannot end the data's <script> element.
func TestBrowserEscaping(t *testing.T) {
	b := newBrowser(t, 1280, 1000)
	cat, job := runJob(t, writeJob(t, map[string]string{"job.mf": escapeJob}))
	path, _ := writeReport(t, cat, job)
	b.open(path)

	if n := run(b, chromedp.Evaluate[int](`document.scripts.length`)); n != 2 {
		t.Errorf("the page has %d script elements, want its own 2", n)
	}
	if n := run(b, chromedp.Evaluate[int](`document.querySelectorAll("b").length`)); n != 0 {
		t.Errorf("the page has %d <b> elements, want none", n)
	}
	failures := run(b, chromedp.Text(chromedp.ID("failures")))
	for _, want := range []string{scriptParam, "<b>bold</b>"} {
		if !strings.Contains(failures, want) {
			t.Errorf("the failures table does not show %q as text:\n%s", want, failures)
		}
	}
	bars := b.drawnBars()
	if len(bars) != 3 {
		t.Fatalf("the timeline drew %d bars, want 3", len(bars))
	}
	for _, bar := range bars {
		if bar.Task == "f-2" {
			if tip := b.hover(bar); !strings.Contains(tip, `"<b>bold</b>"`) {
				t.Errorf("hovering f-2 shows %q, without its params as text", tip)
			}
		}
	}
	b.checkConsole()
}

// TestBrowserRetriesAndWorkers: three workers give three lanes, and a retried task's attempts
// are bars of their own.
func TestBrowserRetriesAndWorkers(t *testing.T) {
	b := newBrowser(t, 1280, 1000)
	cat, job := runJob(t, writeJob(t, flakyJob))
	path, _ := writeReport(t, cat, job)
	b.open(path)

	bars := b.drawnBars()
	if len(bars) != 13 {
		t.Fatalf("the timeline drew %d bars, want 13 (9 tasks, 4 retried)", len(bars))
	}
	lanes := map[string]bool{}
	var retries, failed int
	for _, bar := range bars {
		lanes[bar.Lane] = true
		if bar.Attempt == 2 {
			retries++
		}
		if bar.Status == "Failed" {
			failed++
			b.checkPixel(bar, "Failed")
		}
	}
	if len(lanes) != 3 {
		t.Errorf("bars on %d lanes %v, want 3 (env local { workers = 3 })", len(lanes), lanes)
	}
	if retries != 4 || failed != 5 {
		t.Errorf("%d second attempts and %d failed bars, want 4 and 5", retries, failed)
	}
	failures := run(b, chromedp.Text(chromedp.ID("failures")))
	if !strings.Contains(failures, "ExitError") || !strings.Contains(failures, "broken for good") {
		t.Errorf("the failures table lacks task 7's ExitError and its stderr:\n%s", failures)
	}

	// Dragging across the first bars zooms to them; a double-click shows everything again.
	left, top := b.canvasAt()
	x, y := left+bars[0].X, top+bars[0].Y+bars[0].H/2
	for _, bar := range bars {
		x = min(x, left+bar.X)
	}
	run(b, chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	run(b, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x+60, y, chromedp.ButtonLeft))
	run(b, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x+60, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	drawn := func() int {
		v := run(b, chromedp.AttributeValue(chromedp.ID("timeline"), "data-drawn"))
		n, _ := strconv.Atoi(v.Value)
		return n
	}
	waitFor := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for n := drawn(); !ok(n); n = drawn() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the timeline still draws %d bars", what, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("after zooming in", func(n int) bool { return n > 0 && n < len(bars) })
	run(b, chromedp.MouseClickXY(x+30, y))
	run(b, chromedp.MouseClickXY(x+30, y, chromedp.ClickCount(2)))
	waitFor("after a double-click", func(n int) bool { return n == len(bars) })

	b.screenshot("retries")
	b.checkConsole()
}

// TestBrowserLargeJob: a job of 100,000 tasks makes a report under 10 MB that headless
// Chromium loads and draws in a few seconds.
func TestBrowserLargeJob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 100,000 tasks")
	}
	const n = 100_000
	cat, job := runJob(t, writeJob(t, map[string]string{"job.mf": fmt.Sprintf(`job big
env local { workers = 4 }
func add(x, y) = x + y
params map(1..%d, ({x: #, y: #}))
`, n)}))
	began := time.Now()
	path, page := writeReport(t, cat, job)
	written := time.Since(began)
	if len(page) >= 10<<20 {
		t.Errorf("the report of %d tasks is %.1f MB, want under 10 MB", n, float64(len(page))/(1<<20))
	}

	b := newBrowser(t, 1280, 1000)
	run(b, chromedp.Navigate("about:blank")) // start the browser before timing the load
	began = time.Now()
	b.open(path)
	loaded := time.Since(began)
	canvas := run(b, chromedp.Attributes(chromedp.ID("timeline")))
	if canvas["data-drawn"] != strconv.Itoa(n) {
		t.Errorf("the timeline drew %s bars, want %d", canvas["data-drawn"], n)
	}
	loadEvent := run(b, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].loadEventEnd`))
	t.Logf("%d tasks: report %.2f MB, written in %v; headless Chromium loaded and drew it in %v (load event at %.0f ms; script %s ms, of which drawing %s ms)",
		n, float64(len(page))/(1<<20), written.Round(time.Millisecond), loaded.Round(time.Millisecond),
		loadEvent, canvas["data-ready-ms"], canvas["data-draw-ms"])
	if loaded > 20*time.Second {
		t.Errorf("loading the report of %d tasks took %v, want a few seconds", n, loaded)
	}
	painted := run(b, chromedp.Evaluate[int](`(() => {
		const c = document.getElementById("timeline");
		const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < px.length; i += 4) if (px[i + 1] > px[i] + 40) n++; // green: Completed
		return n;
	})()`))
	if painted == 0 {
		t.Error("the canvas has no green (Completed) pixel")
	}
	b.screenshot("large")
	b.checkConsole()
}
