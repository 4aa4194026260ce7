package report

import (
	"math"
	"time"
)

// histogram is the run-time histogram, laid out for a small SVG (a few dozen elements, so it
// is drawn on the server side and needs no script).
type histogram struct {
	N        int  // tasks counted
	Log      bool // bins are of equal ratio, not equal width
	MaxCount int
	Bins     []bin
	Ticks    []tick
	// The SVG's geometry, in viewBox units.
	Width, Height, Left, Right, Top, Bottom float64
}

// bin is one bar: the tasks whose run time is in [Lo, Hi) (the first of log bins also holds
// the shorter ones, down to zero).
type bin struct {
	Lo, Hi     string
	First      bool
	Count      int
	X, Y, W, H float64
}

// tick is a label under the x axis.
type tick struct {
	X      float64
	Label  string
	Anchor string // text-anchor
}

// newHistogram bins run times into at most nbins bars. The bins are logarithmic when the run times span two orders of magnitude or
// more, so that a few slow tasks do not squash every other task into the first bar.
func newHistogram(runTimes []time.Duration, nbins int) *histogram {
	if len(runTimes) == 0 {
		return nil
	}
	h := &histogram{N: len(runTimes), Width: 640, Height: 190, Left: 48, Right: 630, Top: 10, Bottom: 160}
	lo, hi, pos := math.Inf(1), math.Inf(-1), math.Inf(1)
	secs := make([]float64, len(runTimes))
	for i, d := range runTimes {
		s := d.Seconds()
		secs[i] = s
		lo, hi = min(lo, s), max(hi, s)
		if s > 0 {
			pos = min(pos, s)
		}
	}
	if hi == lo {
		nbins = 1
	}
	// Log bins start at the shortest run time above zero; zeros go in the first bin.
	h.Log = !math.IsInf(pos, 1) && hi/pos >= 100
	if h.Log {
		lo = pos
	}
	edge := func(i int) float64 {
		f := float64(i) / float64(nbins)
		if h.Log {
			return lo * math.Pow(hi/lo, f)
		}
		return lo + (hi-lo)*f
	}
	place := func(s float64) int {
		var f float64
		switch {
		case hi == lo:
			return 0
		case h.Log:
			f = math.Log(max(s, lo)/lo) / math.Log(hi/lo)
		default:
			f = (s - lo) / (hi - lo)
		}
		return min(nbins-1, max(0, int(f*float64(nbins))))
	}
	counts := make([]int, nbins)
	for _, s := range secs {
		counts[place(s)]++
	}
	for _, c := range counts {
		h.MaxCount = max(h.MaxCount, c)
	}
	plotW, plotH := h.Right-h.Left, h.Bottom-h.Top
	w := plotW / float64(nbins)
	for i, c := range counts {
		bh := plotH * float64(c) / float64(h.MaxCount)
		if c > 0 {
			bh = max(bh, 1)
		}
		h.Bins = append(h.Bins, bin{
			Lo: formatSeconds(edge(i)), Hi: formatSeconds(edge(i + 1)), Count: c,
			First: i == 0 && h.Log,
			X:     round1(h.Left + float64(i)*w + 0.5), Y: round1(h.Bottom - bh),
			W: round1(max(w-1, 0.5)), H: round1(bh),
		})
	}
	h.Ticks = []tick{
		{h.Left, formatSeconds(lo), "start"},
		{h.Left + plotW/2, formatSeconds(edge(nbins / 2)), "middle"},
		{h.Right, formatSeconds(hi), "end"},
	}
	if nbins == 1 {
		h.Ticks = []tick{{h.Left + plotW/2, formatSeconds(lo), "middle"}}
	}
	return h
}

func formatSeconds(s float64) string { return formatDuration(time.Duration(s * float64(time.Second))) }

func round1(f float64) float64 { return math.Round(f*10) / 10 }
