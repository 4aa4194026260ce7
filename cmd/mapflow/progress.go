package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	rt "github.com/mapflow/mapflow/runtime"
)

// progress shows a running job's progress: a bar on a terminal, plain lines otherwise.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	name     string
	bar      *progressbar.ProgressBar // nil when not on a terminal
	total    int
	last     time.Time
	done     int
	failed   int
	cached   int
	reported bool
}

func (a *app) newProgress(name string) *progress {
	p := &progress{w: a.stderr, name: name, last: time.Now()}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(name),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("tasks"),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
	}
	return p
}

// update is the runtime's progress callback.
func (p *progress) update(c rt.Counts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done, failed, total := c.Done, c.Failed, c.Total
	p.done, p.failed, p.cached = done, failed, c.Cached
	if p.bar != nil {
		if total > 0 && total != p.total {
			p.bar.ChangeMax(total)
		}
		p.total = total
		p.bar.Set(done)
		if d := p.describe(); d != "" {
			p.bar.Describe(fmt.Sprintf("%s (%s)", p.name, d))
		}
		return
	}
	p.total = total
	// Plain lines, at most one every two seconds: logs of long jobs stay readable.
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		p.reported = true
		line := fmt.Sprintf("%s: %d/%s tasks done, %d failed", p.name, done, totalString(total), failed)
		if p.cached > 0 {
			line += fmt.Sprintf(", %d cached", p.cached)
		}
		fmt.Fprintln(p.w, line)
	}
}

// describe is the bar's note: how many tasks failed and how many were cached, or "".
func (p *progress) describe() string {
	var parts []string
	if p.failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", p.failed))
	}
	if p.cached > 0 {
		parts = append(parts, fmt.Sprintf("%d cached", p.cached))
	}
	return strings.Join(parts, ", ")
}

func totalString(total int) string {
	if total <= 0 {
		return "?"
	}
	return fmt.Sprint(total)
}

// finish ends the bar, so that results print on a clean line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Clear()
	}
}
