package catalog

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"modernc.org/sqlite"
)

// The percentile aggregates of SQLite's percentile extension, which modernc.org/sqlite does
// not build in, with the same names and results, for the SQL users write over run_time:
//
//	median(Y)             the middle value (the mean of the two middle ones for an even count)
//	percentile(Y, P)      P from 0 to 100, interpolating between the two nearest values
//	percentile_cont(Y, P) P from 0 to 1, interpolating
//	percentile_disc(Y, P) P from 0 to 1, the nearest value at or below
//
// NULLs are skipped; no values give NULL; a Y that is not a number, or a P that is out of
// range or changes from row to row, is an error. They also work as window functions.
var percentileFuncs = []struct {
	name  string
	nArgs int32
	scale float64 // P is divided by it to get a fraction
	disc  bool
}{
	{"median", 1, 0, false},
	{"percentile", 2, 100, false},
	{"percentile_cont", 2, 1, false},
	{"percentile_disc", 2, 1, true},
}

func init() {
	for _, f := range percentileFuncs {
		sqlite.MustRegisterFunction(f.name, percentileImpl(f.name, f.nArgs, f.scale, f.disc))
	}
}

// registerPercentiles adds the percentile aggregates to a driver of our own (the Reader's).
func registerPercentiles(d *sqlite.Driver) error {
	for _, f := range percentileFuncs {
		if err := d.RegisterFunction(f.name, percentileImpl(f.name, f.nArgs, f.scale, f.disc)); err != nil {
			return err
		}
	}
	return nil
}

func percentileImpl(name string, nArgs int32, scale float64, disc bool) *sqlite.FunctionImpl {
	return &sqlite.FunctionImpl{
		NArgs:         nArgs,
		Deterministic: true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) {
			return &percentileAgg{name: name, scale: scale, disc: disc, p: -1}, nil
		},
	}
}

// percentileAgg is one evaluation of a percentile aggregate.
type percentileAgg struct {
	name  string
	scale float64
	disc  bool
	p     float64 // the fraction asked for; -1 until the first row
	ys    []float64
}

func (a *percentileAgg) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	if err := a.takeP(args); err != nil {
		return err
	}
	y, ok, err := number(args[0])
	if err != nil {
		return fmt.Errorf("%s: the values must be numbers: %w", a.name, err)
	}
	if ok {
		a.ys = append(a.ys, y)
	}
	return nil
}

// takeP reads P of a row (median's is 0.5), which must be the same on every row.
func (a *percentileAgg) takeP(args []driver.Value) error {
	p := 0.5
	if a.scale != 0 {
		v, ok, err := number(args[1])
		if err != nil || !ok || v < 0 || v > a.scale {
			return fmt.Errorf("%s: the second argument must be a number from 0 to %g", a.name, a.scale)
		}
		p = v / a.scale
	}
	if a.p >= 0 && math.Abs(a.p-p) > 1e-5 {
		return fmt.Errorf("%s: the second argument must be the same on every row", a.name)
	}
	a.p = p
	return nil
}

func (a *percentileAgg) WindowInverse(_ *sqlite.FunctionContext, args []driver.Value) error {
	y, ok, err := number(args[0])
	if err != nil || !ok {
		return err
	}
	if i := slices.Index(a.ys, y); i >= 0 {
		a.ys = slices.Delete(a.ys, i, i+1)
	}
	return nil
}

func (a *percentileAgg) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	if len(a.ys) == 0 {
		return nil, nil
	}
	ys := slices.Clone(a.ys)
	slices.Sort(ys)
	ix := a.p * float64(len(ys)-1)
	i := int(ix)
	if a.disc || i+1 >= len(ys) {
		return ys[i], nil
	}
	return ys[i] + (ys[i+1]-ys[i])*(ix-float64(i)), nil
}

func (a *percentileAgg) Final(*sqlite.FunctionContext) {}

// number reads a value as SQLite's numeric functions do: integers and reals as they are, text
// that reads as a number, NULL as absent (ok false); anything else, and infinities, fail.
func number(v driver.Value) (f float64, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return float64(v), true, nil
	case float64:
		f = v
	case string:
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false, fmt.Errorf("%q is not a number", v)
		}
	case []byte:
		return number(string(v))
	default:
		return 0, false, fmt.Errorf("%T is not a number", v)
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, errors.New("infinity is not a value of a distribution")
	}
	return f, true, nil
}
