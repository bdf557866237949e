package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"mnist/model"
)

// progress shows training like Keras's fit: on a terminal, a live bar per
// epoch with step counter, elapsed time, ETA, running loss and accuracy.
// Every epoch also ends with one log entry, which is all that appears when
// stderr is not a terminal (CI, pipes), the terminal is too narrow for the
// bar (fitBar), or the log format is JSON.
type progress struct {
	log    *logrus.Logger
	out    io.Writer
	live   bool
	epochs int
	// ascii draws the bar in ASCII ("[===>...]"), for a locale that is
	// not UTF-8.
	ascii bool
	// barLive says the current epoch has a live bar, barStats that its
	// description shows the running loss and accuracy (fitBar). bar is
	// that bar, nil until the epoch's first step, and barSkipped the
	// epoch's steps before that one, which it leaves out (newBar).
	barLive, barStats bool
	bar               *progressbar.ProgressBar
	barSkipped        int
}

func newProgress(o options, log *logrus.Logger, stderr io.Writer) *progress {
	return &progress{
		log:    log,
		out:    stderr,
		live:   liveBar(o.logFormat, isTerminal(stderr), os.Getenv("TERM")),
		epochs: o.cfg.Epochs,
		ascii:  !utf8Locale(os.Getenv("LC_ALL"), os.Getenv("LC_CTYPE"), os.Getenv("LANG")),
	}
}

// liveBar says whether to draw the live bar: in text logs on a terminal
// that can redraw a line. TERM=dumb (Emacs shells, some CI consoles) says
// it cannot: the bar's carriage returns would pile up as garbage there.
func liveBar(logFormat string, terminal bool, term string) bool {
	return logFormat == "text" && terminal && term != "dumb"
}

// utf8Locale says whether the locale, from the first of LC_ALL, LC_CTYPE
// and LANG that is set, writes UTF-8: it names it ("en_US.UTF-8",
// "C.utf8"). Without one, the locale is C, which is ASCII: the bar's '█'
// would show there as garbage.
func utf8Locale(lcAll, lcCtype, lang string) bool {
	for _, v := range []string{lcAll, lcCtype, lang} {
		if v != "" {
			v = strings.ToLower(v)
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	return false
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

// epochStart decides whether this epoch has a live bar, and how it
// looks; the first step draws it.
func (p *progress) epochStart(epoch, steps int) {
	p.bar = nil
	p.barLive, p.barStats = fitBar(termColumns(p.out), p.epochs, steps)
}

func (p *progress) step(s model.StepStats) {
	if !p.barLive {
		return
	}
	if p.bar == nil {
		p.bar, p.barSkipped = newBar(p.out, s, p.epochs, p.ascii)
	}
	// Rewriting the description costs a string format; every 20 steps is
	// plenty for a display that redraws ten times a second.
	if p.barStats && (s.Step%20 == 0 || s.Step == s.Steps) {
		p.bar.Describe(fmt.Sprintf("Epoch %d/%d  loss %.4f  acc %.4f", s.Epoch, p.epochs, s.Loss, s.Accuracy))
	}
	_ = p.bar.Set(s.Step - p.barSkipped)
}

// newBar is the live bar of the epoch whose first step this run trains is
// s, and the steps before s, which an earlier run trained (a -resume from a
// mid-epoch checkpoint) and the bar leaves out: counted in, they would
// seem done at once, and the ETA would take them for the rate.
func newBar(out io.Writer, s model.StepStats, epochs int, ascii bool) (*progressbar.ProgressBar, int) {
	skipped := s.Step - 1
	theme := progressbar.ThemeDefault
	if ascii {
		theme = progressbar.ThemeASCII
	}
	return progressbar.NewOptions(s.Steps-skipped,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription(fmt.Sprintf("Epoch %d/%d", s.Epoch, epochs)),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(barWidth),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetTheme(theme),
	), skipped
}

// The live bar's line is its description, then " 100% |", the bar,
// "| (1875/1875) [3s:5s]". The library narrows the bar to fit the
// terminal, down to nothing, but not the rest: a line wider than the
// terminal wraps, and the bar's carriage return then redraws only the
// last row, leaving the others on screen.
const (
	barWidth    = 30 // the bar's width where the terminal has room
	barMinWidth = 10 // room kept for the bar, and for longer times than barTimes
	// barStats is the running loss and accuracy, with room for a loss
	// up to 999.
	barStats = len("  loss 000.0000  acc 0.0000")
	// barTimes is the elapsed time and ETA of an epoch under a minute
	// each; longer ones take from barMinWidth.
	barTimes = len(" [59s:59s]")
	// barPercent is the percentage and the bar's two ends.
	barPercent = len(" 100% ||")
	// defaultColumns is taken for a terminal that does not say its width.
	defaultColumns = 80
)

// fitBar decides the live bar for a terminal columns wide (0 when it does
// not say): live says whether to draw one at all, stats whether its
// description carries the running loss and accuracy. What it allows fits
// in one column less than the terminal with a bar of barMinWidth; the
// library then sizes the bar to the terminal's width. Too narrow for the
// bar even without the statistics, there is none: each epoch's log line
// remains.
func fitBar(columns, epochs, steps int) (live, stats bool) {
	if columns <= 0 {
		columns = defaultColumns
	}
	room := columns - 1 - len(fmt.Sprintf("Epoch %d/%d", epochs, epochs)) - barPercent -
		len(fmt.Sprintf(" (%d/%d)", steps, steps)) - barTimes - barMinWidth
	return room >= 0, room >= barStats
}

// termColumns is the width of the terminal w writes to, or 0 when w is not
// a terminal or does not say.
func termColumns(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	columns, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return columns
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

// finish clears a bar left by an interrupted epoch: its line is blanked
// and the cursor returned to its start, where the next log entry goes.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Clear()
		p.bar = nil
	}
}
