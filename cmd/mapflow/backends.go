package main

// The backends this build of mapflow runs: each registers its env kind, settings and store
// scheme (see runtime.Register and remote.RegisterStore) when imported.
import (
	_ "github.com/mapflow/mapflow/backends/ec2"
	_ "github.com/mapflow/mapflow/backends/hadoop"
	_ "github.com/mapflow/mapflow/backends/local"
	_ "github.com/mapflow/mapflow/backends/slurm"
)
