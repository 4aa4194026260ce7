package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	rt "github.com/mapflow/mapflow/runtime"
)

// formatValue writes a JSON-like value the way people read it: JSON with a space after each
// comma and colon, keys sorted: [40, null, 10], {"a": 1}.
func formatValue(v any) string {
	var b strings.Builder
	writeValue(&b, v)
	return b.String()
}

func writeValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case json.Number:
		b.WriteString(x.String())
	case json.RawMessage:
		writeValue(b, decodeJSON(x))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			b.WriteString(strconv.Quote(strconv.FormatFloat(x, 'g', -1, 64)))
			return
		}
		enc, _ := rt.MarshalJSON(x)
		b.Write(enc)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			enc, _ := rt.MarshalJSON(k)
			b.Write(enc)
			b.WriteString(": ")
			writeValue(b, x[k])
		}
		b.WriteByte('}')
	default:
		enc, err := rt.MarshalJSON(x)
		if err != nil {
			fmt.Fprintf(b, "%q", fmt.Sprint(x))
			return
		}
		b.Write(enc)
	}
}

// decodeJSON decodes catalog JSON keeping numbers exactly as written; nil is nil, and JSON that
// does not decode is returned as its text.
func decodeJSON(data []byte) any {
	if data == nil {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(data)
	}
	return v
}

// formatResults formats the first map results of a job of total tasks, saying how many more
// there are past them.
func formatResults(results []any, total int) string {
	if total <= len(results) {
		return formatValue(results)
	}
	s := formatValue(results)
	if len(results) == 0 {
		return fmt.Sprintf("[... %d more]", total)
	}
	return fmt.Sprintf("%s, ... %d more]", s[:len(s)-1], total-len(results))
}

// table is rows of cells to print as an aligned table, CSV or JSON.
type table struct {
	cols []string
	rows [][]string
	// numeric names the columns that JSON gives as numbers; in JSON an empty cell is null.
	numeric map[string]bool
}

// write prints t in the named format: table, csv or json.
func (t *table) write(w io.Writer, format string) error {
	switch format {
	case "", "table":
		var buf bytes.Buffer
		tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(t.cols, "\t"))
		for _, r := range t.rows {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = oneLine(c)
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		// Empty last cells leave spaces at the ends of lines.
		lines := bytes.Split(buf.Bytes(), []byte("\n"))
		for i, l := range lines {
			lines[i] = bytes.TrimRight(l, " ")
		}
		_, err := w.Write(bytes.Join(lines, []byte("\n")))
		return err
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(t.cols)
		cw.WriteAll(t.rows)
		return cw.Error()
	case "json":
		out := make([]map[string]any, len(t.rows))
		for i, r := range t.rows {
			m := make(map[string]any, len(t.cols))
			for j, c := range t.cols {
				m[c] = t.jsonCell(c, r[j])
			}
			out[i] = m
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return usageErr("unknown format %q: use table, csv or json", format)
}

// jsonCell is a cell's JSON value: null when empty, a number in a numeric column.
func (t *table) jsonCell(col, cell string) any {
	if cell == "" {
		return nil
	}
	if t.numeric[col] {
		if f, err := strconv.ParseFloat(cell, 64); err == nil {
			return f
		}
	}
	return cell
}

// oneLine fits a multi-line cell (a traceback) on one table line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\n\t\r") {
		return s
	}
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(strings.ReplaceAll(l, "\t", " ")); l != "" {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, " | ")
}

// formatTime prints a catalog time the way SQLite stores it; zero is empty.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
}

// formatSeconds prints a duration in seconds with millisecond precision.
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
