package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotSustained draws one PNG of two panels over the same time axis:
// checkouts/s per window (one colour per phase, with the throughput target as
// a dashed line over the judged phase) above the server's RSS (with the memory
// target). gonum/plot has no second y axis, and two panels keep both scales
// readable.
func plotSustained(path string, rows []windowRow, v sustainedVerdict) error {
	if len(rows) == 0 {
		return fmt.Errorf("plot: no windows to draw")
	}
	last := rows[len(rows)-1]
	xMax := last.StartS + last.DurationS
	rate, err := ratePanel(rows, v, xMax)
	if err != nil {
		return err
	}
	rss, err := rssPanel(rows, xMax)
	if err != nil {
		return err
	}
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, 2*plotHeight), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Centimeter / 2, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	panels := [][]*plot.Plot{{rate}, {rss}}
	canvases := plot.Align(panels, tiles, dc)
	for i := range panels {
		panels[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// ratePanel plots each window's rate at the middle of the window.
func ratePanel(rows []windowRow, v sustainedVerdict, xMax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Checkouts per second, per window"
	p.X.Label.Text = "seconds since the first window"
	p.Y.Label.Text = "checkouts/s"
	p.Legend.Top = true
	p.Legend.Left = true
	top := 0.0
	for i, name := range phaseNames(rows) {
		var pts plotter.XYs
		for _, r := range rows {
			if r.Phase == name {
				pts = append(pts, plotter.XY{X: r.StartS + r.DurationS/2, Y: r.Rate()})
				top = max(top, r.Rate())
			}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("rate plot: %w", err)
		}
		line.Color, points.Color, points.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(name, line, points)
	}
	if v.Windows > 0 && v.First > 0 {
		from, to := phaseSpan(rows, v.Phase)
		target, err := plotter.NewLine(plotter.XYs{{X: from, Y: targetRateRatio * v.First}, {X: to, Y: targetRateRatio * v.First}})
		if err != nil {
			return nil, fmt.Errorf("rate plot: %w", err)
		}
		target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		target.Color = color.Gray{Y: 110}
		p.Add(target)
		p.Legend.Add(fmt.Sprintf("%.0f%% of the first %s window", targetRateRatio*100, v.Phase), target)
	}
	p.X.Min, p.X.Max = 0, xMax
	p.X.Tick.Marker = stepTicks{}
	p.Y.Min = 0
	p.Y.Max = top * 1.35 // head room for the legend
	p.Y.Tick.Marker = plainTicks{}
	return p, nil
}

// rssPanel plots the RSS read when each window closed, at its end.
func rssPanel(rows []windowRow, xMax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Server RSS at the end of each window"
	p.X.Label.Text = "seconds since the first window"
	p.Y.Label.Text = "MiB"
	p.Legend.Top = true
	p.Legend.Left = true
	var pts plotter.XYs
	top := float64(targetRSSMiB)
	for _, r := range rows {
		if r.RSSBytes >= 0 {
			pts = append(pts, plotter.XY{X: r.StartS + r.DurationS, Y: mib(r.RSSBytes)})
			top = max(top, mib(r.RSSBytes))
		}
	}
	if len(pts) > 0 {
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("rss plot: %w", err)
		}
		line.Color, points.Color = plotutil.Color(2), plotutil.Color(2)
		p.Add(line, points)
		p.Legend.Add("VmRSS", line, points)
	} else {
		p.Title.Text += " (not read: no -server-pid)"
	}
	target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: targetRSSMiB}, {X: xMax, Y: targetRSSMiB}})
	if err != nil {
		return nil, fmt.Errorf("rss plot: %w", err)
	}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	target.Color = color.RGBA{R: 200, G: 40, B: 40, A: 255}
	p.Add(target)
	p.Legend.Add(fmt.Sprintf("target ≤ %d MiB", targetRSSMiB), target)
	p.X.Min, p.X.Max = 0, xMax
	p.X.Tick.Marker = stepTicks{}
	p.Y.Min = 0
	p.Y.Max = top * 1.35
	p.Y.Tick.Marker = plainTicks{}
	return p, nil
}

// stepTicks labels a time axis every 1, 2 or 5 × 10^k seconds, whichever
// gives five to ten labels; gonum's default picks as few as three, which is
// too coarse to find a window by its start time.
type stepTicks struct{}

func (stepTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	step := math.Pow(10, math.Floor(math.Log10(hi-lo)))
	for _, m := range []float64{0.1, 0.2, 0.5, 1} {
		if (hi-lo)/(step*m) <= 10 {
			step *= m
			break
		}
	}
	var ts []plot.Tick
	// Multiples of step rather than a running sum, which would print 0.30000000000000004.
	for k := math.Ceil(lo / step); k*step <= hi+step*1e-9; k++ {
		v := k * step
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 6, 64)})
	}
	return ts
}

// phaseNames lists the phases in the order their first windows came, each once.
func phaseNames(rows []windowRow) []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.Phase] {
			seen[r.Phase] = true
			names = append(names, r.Phase)
		}
	}
	return names
}

// phaseSpan is where phase's windows lie on the time axis.
func phaseSpan(rows []windowRow, phase string) (from, to float64) {
	first := true
	for _, r := range rows {
		if r.Phase != phase {
			continue
		}
		if first {
			from, first = r.StartS, false
		}
		to = r.StartS + r.DurationS
	}
	return from, to
}
