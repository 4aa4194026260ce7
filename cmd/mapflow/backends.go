package main

import (
	"fmt"

	"github.com/mapflow/mapflow/backends/local"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// newBackend builds the backend for an env block. Every backend is wired here and only here.
func newBackend(env *lang.Env) (rt.Backend, error) {
	switch env.Kind {
	case "local":
		cfg, err := local.ConfigFromEnv(env)
		if err != nil {
			return nil, err
		}
		return local.New(cfg), nil
	default:
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf(
			"%s: env %s is of kind %s, which this build of mapflow cannot run yet; pick a local env with --env",
			env.Pos, env.Name, env.Kind)}
	}
}
