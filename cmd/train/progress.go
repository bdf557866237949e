package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"mnist/model"
)

// progress shows training like Keras's fit: on a terminal, a live bar per
// epoch with step counter, elapsed time, ETA, running loss and accuracy.
// Every epoch also ends with one log entry, which is all that appears when
// stderr is not a terminal (CI, pipes) or the log format is JSON.
type progress struct {
	log    *logrus.Logger
	out    io.Writer
	live   bool
	epochs int
	bar    *progressbar.ProgressBar
}

func newProgress(o options, log *logrus.Logger, stderr io.Writer) *progress {
	return &progress{
		log:    log,
		out:    stderr,
		live:   liveBar(o.logFormat, isTerminal(stderr), os.Getenv("TERM")),
		epochs: o.cfg.Epochs,
	}
}

// liveBar says whether to draw the live bar: in text logs on a terminal
// that can redraw a line. TERM=dumb (Emacs shells, some CI consoles) says
// it cannot: the bar's carriage returns would pile up as garbage there.
func liveBar(logFormat string, terminal bool, term string) bool {
	return logFormat == "text" && terminal && term != "dumb"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) hooks() model.Hooks {
	h := model.Hooks{EpochEnd: p.epochEnd}
	if p.live {
		h.EpochStart = p.epochStart
		h.Step = p.step
	}
	return h
}

func (p *progress) epochStart(epoch, steps int) {
	p.bar = progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(p.out),
		progressbar.OptionSetDescription(fmt.Sprintf("Epoch %d/%d", epoch, p.epochs)),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *progress) step(s model.StepStats) {
	// Rewriting the description costs a string format; every 20 steps is
	// plenty for a display that redraws ten times a second.
	if s.Step%20 == 0 || s.Step == s.Steps {
		p.bar.Describe(fmt.Sprintf("Epoch %d/%d  loss %.4f  acc %.4f", s.Epoch, p.epochs, s.Loss, s.Accuracy))
	}
	_ = p.bar.Set(s.Step)
}

func (p *progress) epochEnd(s model.EpochStats) {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
	p.log.WithFields(logrus.Fields{
		"epoch":          s.Epoch,
		"train_loss":     logNumber(round(s.Loss, 6)),
		"train_accuracy": logNumber(round(s.Accuracy, 6)),
		"seconds":        round(s.Seconds, 3),
	}).Infof("epoch %d/%d", s.Epoch, p.epochs)
}

// finish clears a bar left by an interrupted epoch.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.out)
		p.bar = nil
	}
}
