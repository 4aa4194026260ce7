package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
	rt "github.com/mapflow/mapflow/runtime"
)

// tableSample is how many rows (and at most tableSampleBytes of their text) a table's column
// widths are measured on before rows are printed; later rows are printed as they come, with
// those widths.
const (
	tableSample      = 1000
	tableSampleBytes = 16 << 20
)

func (a *app) sqlCommand() *cobra.Command {
	var format string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sql QUERY",
		Short: "Run a read-only SQL query over the catalog (tables: jobs, tasks, task_attempts, logs)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := bufio.NewWriterSize(a.stdout, 64<<10)
			out, err := newRowWriter(w, format, "NULL")
			if err != nil {
				return err
			}
			path, err := a.existingCatalogPath()
			if err != nil {
				return err
			}
			r, err := catalog.OpenReader(path)
			if err != nil {
				return err
			}
			defer r.Close()
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			err = r.QueryEach(ctx, strings.Join(args, " "), out.header, out.row)
			if err == nil {
				err = out.end()
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			switch {
			case cmd.Context().Err() != nil:
				return &exitError{code: exitCanceled, err: errors.New("query interrupted")}
			case ctx.Err() != nil:
				return fmt.Errorf("query stopped after %s (--timeout; 0 lets it run)", timeout)
			case err != nil:
				return &exitError{code: exitBadInput, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, csv or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "stop the query after this long (0: no limit)")
	return cmd
}

// rowWriter prints rows as they come.
type rowWriter interface {
	header(cols []string) error
	row(vals []any) error
	end() error
}

// newRowWriter prints rows to w in the named format (table, csv or json); null is how a nil
// value reads in a table or CSV.
func newRowWriter(w io.Writer, format, null string) (rowWriter, error) {
	switch format {
	case "", "table":
		return &tableRows{w: w, null: null}, nil
	case "csv":
		return &csvRows{w: csv.NewWriter(w), null: null}, nil
	case "json":
		return &jsonRows{w: w}, nil
	}
	return nil, usageErr("unknown format %q: use table, csv or json", format)
}

// sqlCell prints one SQL value; a nil prints as null.
func sqlCell(v any, null string) string {
	switch x := v.(type) {
	case nil:
		return null
	case []byte:
		return string(x)
	case float64:
		if s, ok := nonFinite(x); ok {
			return s
		}
		return formatValue(x)
	default:
		return fmt.Sprint(x)
	}
}

// nonFinite names an infinity or NaN as people write them (SQLite's REAL holds infinities).
func nonFinite(f float64) (string, bool) {
	switch {
	case math.IsInf(f, 1):
		return "Inf", true
	case math.IsInf(f, -1):
		return "-Inf", true
	case math.IsNaN(f):
		return "NaN", true
	}
	return "", false
}

// tableRows aligns columns: their widths come from the header and the first tableSample rows.
type tableRows struct {
	w           io.Writer
	null        string
	cols        []string
	sample      [][]string
	sampleBytes int
	widths      []int
}

func (t *tableRows) header(cols []string) error {
	t.cols = cols
	return nil
}

func (t *tableRows) row(vals []any) error {
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = oneLine(sqlCell(v, t.null))
	}
	if t.widths != nil {
		return t.print(cells)
	}
	t.sample = append(t.sample, cells)
	for _, c := range cells {
		t.sampleBytes += len(c)
	}
	if len(t.sample) == tableSample || t.sampleBytes >= tableSampleBytes {
		return t.flushSample()
	}
	return nil
}

func (t *tableRows) flushSample() error {
	t.widths = make([]int, len(t.cols))
	for i, c := range t.cols {
		t.widths[i] = utf8.RuneCountInString(c)
	}
	for _, r := range t.sample {
		for i, c := range r {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
		}
	}
	if err := t.print(t.cols); err != nil {
		return err
	}
	for _, r := range t.sample {
		if err := t.print(r); err != nil {
			return err
		}
	}
	t.sample = nil
	return nil
}

// print writes a line: each cell padded to its column's width and two spaces, the last not.
func (t *tableRows) print(cells []string) error {
	var b strings.Builder
	for i, c := range cells {
		b.WriteString(c)
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", max(t.widths[i]-utf8.RuneCountInString(c), 0)+2))
		}
	}
	line := strings.TrimRight(b.String(), " ")
	_, err := io.WriteString(t.w, line+"\n")
	return err
}

func (t *tableRows) end() error {
	if t.widths == nil {
		return t.flushSample()
	}
	return nil
}

type csvRows struct {
	w    *csv.Writer
	null string
}

func (c *csvRows) header(cols []string) error { return c.w.Write(cols) }

func (c *csvRows) row(vals []any) error {
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = sqlCell(v, c.null)
	}
	return c.w.Write(cells)
}

func (c *csvRows) end() error {
	c.w.Flush()
	return c.w.Error()
}

// jsonRows prints a JSON list of objects with the columns in query order and SQL's own types:
// NULL is null, integers and reals numbers (an infinity or NaN the string "Inf", "-Inf" or
// "NaN", which JSON cannot write as a number), text and blobs strings.
type jsonRows struct {
	w    io.Writer
	cols []string
	n    int
	buf  []byte
}

func (j *jsonRows) header(cols []string) error {
	j.cols = cols
	_, err := io.WriteString(j.w, "[")
	return err
}

func (j *jsonRows) row(vals []any) error {
	b := j.buf[:0]
	if j.n > 0 {
		b = append(b, ',')
	}
	j.n++
	b = append(b, "\n  {"...)
	for i, c := range j.cols {
		if i > 0 {
			b = append(b, ',')
		}
		v := vals[i]
		switch x := v.(type) {
		case []byte:
			v = string(x)
		case float64:
			if s, ok := nonFinite(x); ok {
				v = s
			}
		}
		var err error
		b = append(b, "\n    "...)
		if b, err = rt.AppendJSON(b, c); err != nil {
			return err
		}
		b = append(b, ": "...)
		if b, err = rt.AppendJSON(b, v); err != nil {
			return err
		}
	}
	b = append(b, "\n  }"...)
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

func (j *jsonRows) end() error {
	end := "]\n"
	if j.n > 0 {
		end = "\n]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}
