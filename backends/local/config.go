package local

import (
	"fmt"
	goruntime "runtime"

	"github.com/mapflow/mapflow/lang"
)

// Config is the local backend's configuration, from an `env local { ... }` block.
type Config struct {
	// Workers is how many tasks run at once (setting `workers`); 0 means the number of CPUs.
	Workers int
}

// ConfigFromEnv reads an env block of kind local.
func ConfigFromEnv(env *lang.Env) (Config, error) {
	var c Config
	if env == nil {
		return c, nil
	}
	if env.Kind != "local" {
		return c, fmt.Errorf("%s: env %s is of kind %s, not local", env.Pos, env.Name, env.Kind)
	}
	if s, ok := env.Settings["workers"]; ok {
		switch v := s.Value.(type) {
		case int64:
			c.Workers = int(v)
		case int:
			c.Workers = v
		default:
			return c, fmt.Errorf("%s: workers must be a whole number, not %v", s.Pos, s.Value)
		}
		if c.Workers < 1 {
			return c, fmt.Errorf("%s: workers must be at least 1, not %d (leave it out for one per CPU)", s.Pos, c.Workers)
		}
	}
	return c, c.Validate()
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Workers < 0 {
		return fmt.Errorf("local: workers must be at least 1, not %d", c.Workers)
	}
	return nil
}

// workers is the number of worker goroutines to run.
func (c Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return goruntime.NumCPU()
}
