package runtime

import (
	"context"
	"fmt"
	"sync"

	"github.com/mapflow/mapflow/lang"
	"github.com/mapflow/mapflow/settings"
)

// Common are the settings every env kind takes; each kind's options struct embeds it (see
// package settings). Its Source says where each setting is written.
type Common struct {
	settings.Source
	// Python is the interpreter of python(...) functions on the workers.
	Python string `setting:"python" help:"the Python interpreter that runs python(...) functions on the workers; default python3 on PATH"`
}

// Check checks the common settings; a kind's own Check calls it.
func (c *Common) Check() []settings.Problem {
	if _, set := c.Keys["python"]; set && c.Python == "" {
		return []settings.Problem{{Key: "python", Message: "must not be empty", Hint: "leave it out for python3 on PATH"}}
	}
	return nil
}

var (
	registryMu sync.RWMutex
	registry   = map[string]func(opts any) (Backend, error){}
)

// Register declares the env kind name: its settings, the fields of the options struct O, and
// how its backend is made from them. A backend package calls it once, from init; the job
// language then checks env blocks of the kind, `mapflow envs` lists its settings, and `run`
// makes its backend with NewBackend.
func Register[O any](kind string, newBackend func(*O) (Backend, error)) {
	settings.Register(kind, new(O))
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[kind] = func(opts any) (Backend, error) {
		o, ok := opts.(*O)
		if !ok {
			return nil, fmt.Errorf("env kind %s: options of type %T, want %T", kind, opts, o)
		}
		return newBackend(o)
	}
}

// NewBackend makes the backend of env, from the options the job language decoded and
// checked, once env.Prepare has prepared them for this machine.
func NewBackend(env *lang.Env) (Backend, error) {
	registryMu.RLock()
	f, ok := registry[env.Kind]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s: env %s is of kind %s, which this build of mapflow cannot run", env.Pos, env.Name, env.Kind)
	}
	if env.Options == nil {
		return nil, fmt.Errorf("%s: env %s has errors: mapflow check shows them", env.Pos, env.Name)
	}
	if err := env.Prepare(context.Background()); err != nil { // a no-op once a command prepared it
		return nil, err
	}
	return f(env.Options)
}
