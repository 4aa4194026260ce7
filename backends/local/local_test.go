package local

import (
	"testing"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, env *lang.Env) rt.Backend { return backendtest.FromEnv(t, env) }, backendtest.Options{})
}
