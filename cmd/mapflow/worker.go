package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/runtime/remote"
)

func (a *app) workerCommand() *cobra.Command {
	var store, id, host, dir string
	var threads int
	var idle time.Duration
	cmd := &cobra.Command{
		Use:   "worker --store URL --id ID",
		Short: "Run the tasks of a staged job (the Hadoop, EC2 and Slurm backends start this on their machines)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if store == "" || id == "" {
				return usageErr("worker needs --store URL and --id ID")
			}
			s, closeStore, err := remote.OpenStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			defer closeStore()
			if host == "" {
				host, _ = os.Hostname()
			}
			if dir == "" {
				if dir, err = os.MkdirTemp("", "mapflow-worker-"); err != nil {
					return err
				}
				defer os.RemoveAll(dir)
			}
			w := &remote.Worker{Store: s, ID: id, Host: host, Dir: dir, Threads: threads, Idle: idle, Log: a.stderr}
			err = w.Run(cmd.Context())
			if errors.Is(err, remote.ErrCanceled) || errors.Is(err, remote.ErrIdle) {
				fmt.Fprintf(a.stderr, "worker %s: %v\n", id, err)
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&store, "store", "", "the job's staging directory: hdfs://NAMENODE:PORT/dir, s3://BUCKET/PREFIX or file:///dir")
	cmd.Flags().StringVar(&id, "id", "", "this worker's id, unique in the job (a container or instance id)")
	cmd.Flags().StringVar(&host, "host", "", "the host recorded for its tasks (default: the host name)")
	cmd.Flags().StringVar(&dir, "dir", "", "a directory of its own for shipped files and task directories (default: a temporary one)")
	cmd.Flags().IntVar(&threads, "threads", 0, "tasks run at once (default: the job's setting, else one per CPU)")
	cmd.Flags().DurationVar(&idle, "idle", 0, "stop after running no chunk for this long (default: never)")
	return cmd
}
