package local

import (
	"testing"

	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) rt.Backend { return New(Config{}) }, backendtest.Options{})
}
