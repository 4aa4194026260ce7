package main

import (
	"context"
	"fmt"
	"html/template"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
	rt "github.com/mapflow/mapflow/runtime"
)

// Report limits: the page lists at most this many tasks (every failed one first, up to the
// limit), and draws at most this many bars in the timeline.
const (
	reportMaxRows = 1000
	reportMaxBars = 2000
)

func (a *app) reportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report JOB -o FILE",
		Short: "Write an HTML page about a job: its summary, a timeline of its tasks, and its failures",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("report needs -o FILE, the HTML file to write")
			}
			cat, row, err := a.findJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer cat.Close()
			page, err := buildReport(cmd.Context(), cat, row)
			if err != nil {
				return err
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("report: %w", err)
			}
			if err := reportTemplate.Execute(f, page); err != nil {
				f.Close()
				return fmt.Errorf("report: write %s: %w", out, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			fmt.Fprintf(a.stderr, "wrote %s (job %s, %d tasks)\n", out, row.ID, page.NumTasks)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the HTML file to write")
	return cmd
}

// reportPage is what the HTML template shows.
type reportPage struct {
	Job       *catalog.Job
	Status    string
	Wall      string
	Counts    string
	Result    string
	NumTasks  int
	RunTimes  []reportStat
	Hosts     []reportHost
	Bars      []reportBar
	BarsShown int
	Height    int
	Rows      []reportRow
	RowsNote  string
	Generated string
}

type reportStat struct{ Name, Value string }

type reportHost struct {
	Host  string
	Tasks int
}

type reportBar struct {
	X, Y, W float64
	Class   string
	Title   string
}

type reportRow struct {
	Name, Status, Host, Start, RunTime, Params, Result, Exception, Message, Traceback string
	Attempt                                                                           int
}

// buildReport reads the job's tasks once and keeps what the page shows.
func buildReport(ctx context.Context, cat *catalog.Catalog, row *catalog.Job) (*reportPage, error) {
	p := &reportPage{Job: row, Status: jobStatus(row), Generated: formatTime(time.Now())}
	if row.Result != nil {
		p.Result = formatValue(decodeJSON(row.Result))
	}
	if !row.StartedAt.IsZero() && !row.FinishedAt.IsZero() {
		p.Wall = formatSeconds(row.FinishedAt.Sub(row.StartedAt)) + " s"
	}
	var (
		runTimes       []float64
		failed, others []reportRow
		hosts          = map[string]int{}
		first, last    time.Time
		spans          []reportBar
		nShown         int
	)
	err := cat.Tasks(ctx, row.ID, func(t *catalog.Task) error {
		p.NumTasks++
		if t.Host != "" {
			hosts[t.Host]++
		}
		runTime := ""
		if !t.Start.IsZero() && !t.End.IsZero() {
			d := t.End.Sub(t.Start)
			runTimes = append(runTimes, d.Seconds())
			runTime = formatSeconds(d)
			if first.IsZero() || t.Start.Before(first) {
				first = t.Start
			}
			if t.End.After(last) {
				last = t.End
			}
			if len(spans) < reportMaxBars {
				spans = append(spans, reportBar{
					X: float64(t.Start.UnixNano()), W: float64(d.Nanoseconds()),
					Class: t.Status, Title: fmt.Sprintf("%s: %s, %s s", t.Name, t.Status, runTime),
				})
			}
		}
		r := reportRow{Name: t.Name, Status: t.Status, Host: t.Host, Start: formatTime(t.Start),
			RunTime: runTime, Params: string(t.Params), Result: string(t.Result), Exception: t.Exception,
			Message: t.Message, Traceback: t.Traceback, Attempt: t.Attempt}
		switch {
		case t.Status == string(rt.Failed):
			if len(failed) < reportMaxRows {
				failed = append(failed, r)
			}
		case len(others) < reportMaxRows:
			others = append(others, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	counts, err := cat.CountByStatus(ctx, row.ID)
	if err != nil {
		return nil, err
	}
	p.Counts = formatCounts(counts)

	p.Rows = append(failed, others...)
	if len(p.Rows) > reportMaxRows {
		p.Rows = p.Rows[:reportMaxRows]
	}
	nShown = len(p.Rows)
	if nShown < p.NumTasks {
		p.RowsNote = fmt.Sprintf("%d of %d tasks shown (failed ones first); all of them: mapflow sql \"SELECT * FROM tasks WHERE job_id = '%s'\"",
			nShown, p.NumTasks, row.ID)
	}

	if len(runTimes) > 0 {
		sort.Float64s(runTimes)
		q := func(f float64) string {
			return fmt.Sprintf("%.3f s", runTimes[min(len(runTimes)-1, int(f*float64(len(runTimes))))])
		}
		p.RunTimes = []reportStat{{"min", q(0)}, {"median", q(0.5)}, {"p95", q(0.95)}, {"max", q(1)}}
	}
	for h, n := range hosts {
		p.Hosts = append(p.Hosts, reportHost{h, n})
	}
	slices.SortFunc(p.Hosts, func(a, b reportHost) int { return b.Tasks - a.Tasks })

	// The timeline: one bar per task, on a line of its own, scaled to 1000 units of width.
	span := float64(last.Sub(first).Nanoseconds())
	if span <= 0 {
		span = 1
	}
	for i := range spans {
		b := &spans[i]
		b.X = (b.X - float64(first.UnixNano())) / span * 1000
		b.W = max(b.W/span*1000, 0.5)
		b.Y = float64(i) * 3
	}
	p.Bars, p.BarsShown, p.Height = spans, len(spans), max(len(spans)*3, 3)
	return p, nil
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mapflow job {{.Job.ID}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
pre { background: #f7f7f7; padding: .5em; overflow-x: auto; }
.Completed { fill: #3a7; color: #2a6; } .Failed { fill: #d33; color: #c22; }
.Canceled { fill: #999; color: #777; } .Running, .Pending { fill: #48c; color: #37b; }
td.tb { font-family: monospace; white-space: pre; }
</style></head><body>
<h1>{{.Job.Name}} <small>{{.Job.ID}}</small></h1>
<table>
<tr><th>status</th><td class="{{.Job.Status}}">{{.Status}}</td></tr>
<tr><th>tasks</th><td>{{.NumTasks}} ({{.Counts}})</td></tr>
<tr><th>env</th><td>{{.Job.EnvName}} ({{.Job.EnvKind}})</td></tr>
<tr><th>script</th><td>{{.Job.ScriptPath}} (sha256 {{.Job.ScriptSHA256}}){{if .Job.GitCommit}}, git {{.Job.GitCommit}}{{end}}</td></tr>
<tr><th>submitted</th><td>{{.Job.SubmittedAt.UTC.Format "2006-01-02 15:04:05.000"}} UTC</td></tr>
{{if .Wall}}<tr><th>wall time</th><td>{{.Wall}}</td></tr>{{end}}
{{if .Result}}<tr><th>result</th><td><code>{{.Result}}</code></td></tr>{{end}}
{{if .Job.Error}}<tr><th>error</th><td>{{.Job.Error}}</td></tr>{{end}}
</table>
{{if .RunTimes}}<h2>Run times</h2>
<table><tr>{{range .RunTimes}}<th>{{.Name}}</th>{{end}}</tr>
<tr>{{range .RunTimes}}<td>{{.Value}}</td>{{end}}</tr></table>{{end}}
{{if .Hosts}}<h2>Hosts</h2>
<table><tr><th>host</th><th>tasks</th></tr>{{range .Hosts}}<tr><td>{{.Host}}</td><td>{{.Tasks}}</td></tr>{{end}}</table>{{end}}
{{if .Bars}}<h2>Timeline</h2>
<p>One line per task ({{.BarsShown}} shown), from the first start to the last end.</p>
<svg viewBox="0 0 1000 {{.Height}}" width="100%" height="{{.Height}}" preserveAspectRatio="none">
{{range .Bars}}<rect x="{{printf "%.2f" .X}}" y="{{.Y}}" width="{{printf "%.2f" .W}}" height="2" class="{{.Class}}"><title>{{.Title}}</title></rect>
{{end}}</svg>{{end}}
<h2>Tasks</h2>
{{if .RowsNote}}<p>{{.RowsNote}}</p>{{end}}
<table>
<tr><th>task_name</th><th>status</th><th>attempt</th><th>host</th><th>start_time</th><th>run_time</th><th>params</th><th>result</th><th>exception</th><th>exception_message</th><th>exception_traceback</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{.Attempt}}</td><td>{{.Host}}</td><td>{{.Start}}</td><td>{{.RunTime}}</td><td><code>{{.Params}}</code></td><td><code>{{.Result}}</code></td><td>{{.Exception}}</td><td>{{.Message}}</td><td class="tb">{{.Traceback}}</td></tr>
{{end}}</table>
<h2>Script</h2>
<pre>{{.Job.ScriptText}}</pre>
<p><small>Written by mapflow report at {{.Generated}} UTC.</small></p>
</body></html>
`))
