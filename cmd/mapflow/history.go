package main

import (
	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/history"
)

func (a *app) explainCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "explain JOB TASK",
		Short: "Say why a task ran although caching was on, or whose result a cached task reused (TASK: a task name or index)",
		Args:  cobra.ExactArgs(2),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			index, err := a.taskIndex(cmd.Context(), cat, row, args[1])
			if err != nil {
				return err
			}
			task, err := cat.Task(cmd.Context(), row.ID, index)
			if err != nil {
				return err
			}
			text, err := history.Explain(cmd.Context(), cat, row, task)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write([]byte(text))
			return err
		}),
	}
}

func (a *app) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff JOB1 JOB2",
		Short: "Show what changed between two runs: script, git commit, tasks, combined result (JOB: an id, a name, or name~N for the run N before its latest)",
		Args:  cobra.ExactArgs(2),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, first *catalog.Job) error {
			second, err := findIn(cmd.Context(), cat, args[1])
			if err != nil {
				return err
			}
			return history.Diff(cmd.Context(), cat, first, second, a.stdout)
		}),
	}
}
