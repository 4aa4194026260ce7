package local

import (
	goruntime "runtime"

	rt "github.com/mapflow/mapflow/runtime"
)

func init() {
	rt.Register("local", func(c *Config) (rt.Backend, error) { return New(*c), nil })
}

// Config is the local backend's settings: an `env local { ... }` block.
type Config struct {
	rt.Common
	// Workers is how many tasks run at once; 0 means the number of CPUs.
	Workers int `setting:"workers" min:"1" max:"4096" help:"goroutines or processes running tasks at once; default: the number of CPUs"`
}

// workers is the number of worker goroutines to run.
func (c Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return goruntime.NumCPU()
}
