package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/report"
)

func (a *app) reportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report JOB [-o FILE]",
		Short: "Write a self-contained HTML page about a job: summary, task timeline, run times, failures",
		Long: `report writes one HTML file about a job, built from the catalog: its summary, a timeline
of every task attempt by host, a histogram of run times with the slowest tasks, and the failed
tasks with their tracebacks. The file needs no network, so it opens offline and can be attached
to a ticket. Without -o it is written to JOB_ID.html in the current directory; -o - writes it
to standard output.`,
		Args: cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, _ []string, cat *catalog.Catalog, job *catalog.Job) error {
			if out == "-" {
				return report.Write(cmd.Context(), a.stdout, cat, job)
			}
			if out == "" {
				// A job id holds the job's name; the name of an older catalog's job may hold a
				// path, which must not take the page out of this directory.
				out = safeFileName(job.ID) + ".html"
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("report: %w", err)
			}
			if err := report.Write(cmd.Context(), f, cat, job); err != nil {
				f.Close()
				os.Remove(out)
				return err
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			fmt.Fprintf(a.stderr, "wrote %s (job %s, %d tasks)\n", out, job.ID, job.NumTasks)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the HTML file to write (default JOB_ID.html; - for standard output)")
	return cmd
}

// safeFileName turns s into one file name: path separators and leading dots become "_".
func safeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '/' || c == '\\' || c == 0 {
			b[i] = '_'
		}
	}
	for i := 0; i < len(b) && b[i] == '.'; i++ {
		b[i] = '_'
	}
	if len(b) == 0 {
		return "job"
	}
	return string(b)
}
