package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
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
func (p *progress) update(done, failed, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.failed = done, failed
	if p.bar != nil {
		if total > 0 && total != p.total {
			p.bar.ChangeMax(total)
		}
		p.total = total
		p.bar.Set(done)
		if failed > 0 {
			p.bar.Describe(fmt.Sprintf("%s (%d failed)", p.name, failed))
		}
		return
	}
	p.total = total
	// Plain lines, at most one every two seconds: logs of long jobs stay readable.
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		p.reported = true
		fmt.Fprintf(p.w, "%s: %d/%s tasks done, %d failed\n", p.name, done, totalString(total), failed)
	}
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
