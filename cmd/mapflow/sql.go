package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
	rt "github.com/mapflow/mapflow/runtime"
)

func (a *app) sqlCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "sql QUERY",
		Short: "Run a read-only SQL query over the catalog (tables: jobs, tasks, task_attempts, logs)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.existingCatalogPath()
			if err != nil {
				return err
			}
			r, err := catalog.OpenReader(path)
			if err != nil {
				return err
			}
			defer r.Close()
			cols, rows, err := r.Query(cmd.Context(), strings.Join(args, " "))
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			if format == "json" {
				return writeJSONRows(a.stdout, cols, rows)
			}
			t := &table{cols: cols}
			for _, row := range rows {
				cells := make([]string, len(row))
				for i, v := range row {
					cells[i] = sqlCell(v)
				}
				t.rows = append(t.rows, cells)
			}
			return t.write(a.stdout, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, csv or json")
	return cmd
}

// sqlCell prints one SQL value; NULL prints as NULL.
func sqlCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	case float64:
		return formatValue(x)
	default:
		return fmt.Sprint(x)
	}
}

// writeJSONRows prints query rows as a JSON list of objects with the columns in query order
// and SQL's own types: NULL is null, integers and reals are numbers, text and blobs strings.
func writeJSONRows(w io.Writer, cols []string, rows [][]any) error {
	var b []byte
	b = append(b, '[')
	for i, row := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  {"...)
		for j, c := range cols {
			if j > 0 {
				b = append(b, ',')
			}
			v := row[j]
			if blob, ok := v.([]byte); ok {
				v = string(blob)
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
	}
	if len(rows) > 0 {
		b = append(b, '\n')
	}
	b = append(b, "]\n"...)
	_, err := w.Write(b)
	return err
}
