package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how a long operation advances: a bar with a rate and an
// ETA when w is a terminal, nothing otherwise (scripts, logs, tests).
type progress struct {
	bar *progressbar.ProgressBar
}

// newProgress starts a progress display of total units (bytes when bytes
// is set, actors otherwise); total -1 when unknown.
func newProgress(w io.Writer, total int64, desc string, bytes bool) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("actors"))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...)}
}

// add advances the display by n units.
func (p *progress) add(n int64) {
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

// done ends the display.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
