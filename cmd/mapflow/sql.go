package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
)

func (a *app) sqlCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "sql QUERY",
		Short: "Run a read-only SQL query over the catalog (tables: jobs, tasks, task_attempts, logs)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.resolveCatalogPath()
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
