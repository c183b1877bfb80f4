package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot size, in the units gonum/plot uses.
const (
	plotWidth  = 16 * vg.Centimeter
	plotHeight = 9 * vg.Centimeter
)

// plotWorkload draws two PNGs for one workload: median throughput per server
// (bars) and latency percentiles per server (lines on a log scale, since
// p99.9 can be orders of magnitude above p50).
func plotWorkload(dir, workload string, ss []summary) error {
	var labels []string
	var rps plotter.Values
	for _, s := range ss {
		if s.Workload == workload {
			labels = append(labels, s.Label)
			rps = append(rps, s.RPS)
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput, workload %s (median)", workload)
	p.Y.Label.Text = "requests/s"
	bars, err := plotter.NewBarChart(rps, vg.Points(28))
	if err != nil {
		return fmt.Errorf("throughput plot: %w", err)
	}
	bars.Color = color.RGBA{R: 60, G: 110, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(labels...)
	p.Y.Min = 0
	p.Y.Tick.Marker = plainTicks{}
	if err := p.Save(plotWidth, plotHeight, filepath.Join(dir, "throughput-"+workload+".png")); err != nil {
		return fmt.Errorf("save throughput plot: %w", err)
	}

	p = plot.New()
	p.Title.Text = fmt.Sprintf("Latency percentiles, workload %s (median)", workload)
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks125{}
	p.Legend.Top = true
	p.Legend.Left = true
	top := 0.0
	i := 0
	for _, s := range ss {
		if s.Workload != workload {
			continue
		}
		pts := plotter.XYs{{X: 0, Y: s.Latency.P50}, {X: 1, Y: s.Latency.P90}, {X: 2, Y: s.Latency.P99}, {X: 3, Y: s.Latency.P999}}
		for j := range pts {
			pts[j].Y = max(pts[j].Y/1000, 0.001) // ms; the log scale cannot show 0
			top = max(top, pts[j].Y)
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("latency plot: %w", err)
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(s.Label, line, points)
		i++
	}
	p.NominalX("p50", "p90", "p99", "p99.9")
	// Head room above the slowest line keeps the legend (top left) off the data.
	p.Y.Max = top * 8
	if err := p.Save(plotWidth, plotHeight, filepath.Join(dir, "latency-"+workload+".png")); err != nil {
		return fmt.Errorf("save latency plot: %w", err)
	}
	return nil
}

// plainTicks are gonum's default ticks labelled without decimals.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// logTicks125 labels 1, 2, 5, 10, 20, 50… across a log axis; gonum's LogTicks
// labels powers of ten only, which often leaves one label on a latency plot.
type logTicks125 struct{}

func (logTicks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}
