package main

import (
	"context"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/settings"
)

// A backend of the tests' own, registered here and nowhere else: testkind.txtar checks and runs
// jobs in it through the CLI, which proves that a backend is one package that registers itself,
// with nothing to change in lang/ or cmd/.
func init() {
	rt.Register("testkind", func(o *testKindOptions) (rt.Backend, error) { return &testKind{o: o}, nil })
}

// testKindOptions are the test kind's settings.
type testKindOptions struct {
	rt.Common
	Rack  string `setting:"rack" required:"true" help:"the rack recorded as every task's host"`
	Scale int    `setting:"scale" default:"1" min:"1" max:"100" help:"what each result is multiplied by"`
}

// Check refuses a rack that is not rack-N.
func (o *testKindOptions) Check() []settings.Problem {
	if len(o.Rack) < 6 || o.Rack[:5] != "rack-" {
		return []settings.Problem{{Key: "rack", Message: "must be rack-N", Hint: `like "rack-7"`}}
	}
	return o.Common.Check()
}

// testKind evaluates each task's expression in the driver and scales its result.
type testKind struct{ o *testKindOptions }

func (b *testKind) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	caller := job.Func.NewCaller()
	for t := range tasks {
		res := rt.NewResult()
		res.Index, res.Attempt, res.Host, res.Start = t.Index, 1, b.o.Rack, time.Now()
		v, err := caller.CallContext(ctx, t.Params)
		res.End = time.Now()
		if n, ok := v.(int); ok && err == nil {
			res.Status, res.Value = rt.Completed, n*b.o.Scale
		} else {
			res.Status, res.Exception, res.Message = rt.Failed, "TypeError", "testkind scales integers only"
		}
		r.Report(rt.Event{Kind: rt.TaskFinished, Result: res})
	}
	return nil
}
