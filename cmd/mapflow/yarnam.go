package main

import (
	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/backends/hadoop"
	"github.com/mapflow/mapflow/runtime/remote"
)

// yarnAMCommand is the YARN ApplicationMaster of a Hadoop job; the Hadoop backend starts it
// in the application's first container. Hidden: users never type it.
func (a *app) yarnAMCommand() *cobra.Command {
	var cfg hadoop.AMConfig
	cmd := &cobra.Command{
		Use:    "yarn-am",
		Short:  "Run a Hadoop job's ApplicationMaster (started by YARN)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, closeStore, err := remote.OpenStore(cmd.Context(), cfg.Store)
			if err != nil {
				return err
			}
			defer closeStore()
			return hadoop.RunAM(cmd.Context(), cfg, s, a.stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Store, "store", "", "the job's staging directory, hdfs://NAMENODE/dir")
	f.IntVar(&cfg.Containers, "containers", hadoop.DefaultContainers, "workers to run")
	f.IntVar(&cfg.MemoryMB, "memory", 512, "memory per worker container, MiB")
	f.IntVar(&cfg.VCores, "vcores", 1, "virtual cores per worker container")
	f.StringVar(&cfg.Binary, "binary", "", "the mapflow binary's HDFS URL")
	f.Int64Var(&cfg.BinarySize, "binary-size", 0, "its length")
	f.Int64Var(&cfg.BinaryMTime, "binary-mtime", 0, "its modification time, ms")
	f.StringVar(&cfg.User, "user", "", "the Hadoop user")
	return cmd
}
