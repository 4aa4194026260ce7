package lang_test

// The job files of these tests use the env kinds of mapflow's backends, which register
// themselves when imported (see package settings).
import (
	_ "github.com/mapflow/mapflow/backends/ec2"
	_ "github.com/mapflow/mapflow/backends/hadoop"
	_ "github.com/mapflow/mapflow/backends/local"
	_ "github.com/mapflow/mapflow/backends/slurm"
)
