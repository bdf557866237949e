package main

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/schollz/progressbar/v3"

	"mnist/model"
)

// TestFitBar: the live bar's line fits the terminal, with a column to
// spare at the bar's least width: the running loss and accuracy go first,
// then the bar itself. The
// line each decision allows is rendered by the library and measured, so a
// change to its layout that breaks the budget fails here too.
func TestFitBar(t *testing.T) {
	cases := []struct {
		name                   string
		columns, epochs, steps int
		live, stats            bool
	}{
		{"wide", 200, 5, 1875, true, true},
		{"80 columns", 80, 5, 1875, true, true},
		{"width unknown is 80", 0, 5, 1875, true, true},
		{"just room for the statistics", 77, 5, 1875, true, true},
		{"one column short of them", 76, 5, 1875, true, false},
		{"narrow", 60, 5, 1875, true, false},
		{"just room for the bar", 50, 5, 1875, true, false},
		{"too narrow for a bar", 49, 5, 1875, false, false},
		{"very narrow", 20, 5, 1875, false, false},
		{"batch size 1 at 80", 80, 5, 60000, true, true},
		{"100 epochs of batch size 1 at 80", 80, 100, 60000, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			live, stats := fitBar(c.columns, c.epochs, c.steps)
			if live != c.live || stats != c.stats {
				t.Fatalf("fitBar(%d, %d, %d) = %v, %v; want %v, %v", c.columns, c.epochs, c.steps, live, stats, c.live, c.stats)
			}
			if !live {
				return
			}
			desc := fmt.Sprintf("Epoch %d/%d", c.epochs, c.epochs)
			if stats {
				desc += fmt.Sprintf("  loss %.4f  acc %.4f", 123.4567, 0.9999)
			}
			bar := progressbar.NewOptions(c.steps, progressbar.OptionSetWriter(io.Discard), progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetWidth(barMinWidth))
			_ = bar.Set(c.steps - 1) // finished, it leaves out the times
			line := strings.TrimPrefix(bar.String(), "\r")
			columns := c.columns
			if columns == 0 {
				columns = defaultColumns
			}
			if n := len([]rune(line)); n > columns-1 {
				t.Errorf("the line is %d wide on %d columns: %q", n, columns, line)
			}
		})
	}
}

// TestBarCountsThisRunsSteps: an epoch resumed part-way has a bar of the
// steps this run trains, so its rate and ETA are this run's; a whole
// epoch's bar counts them all.
func TestBarCountsThisRunsSteps(t *testing.T) {
	cases := []struct {
		name               string
		first, steps, done int
		wantMax            int64
	}{
		{"whole epoch", 1, 1875, 3, 1875},
		{"resumed part-way", 901, 1875, 3, 975},
		{"resumed at the last step", 1875, 1875, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &progress{out: new(strings.Builder), epochs: 2}
			p.epochStart(1, c.steps)
			for s := c.first; s < c.first+c.done; s++ {
				p.step(model.StepStats{Epoch: 1, Step: s, Steps: c.steps})
			}
			if st := p.bar.State(); st.Max != c.wantMax || st.CurrentNum != int64(c.done) {
				t.Errorf("bar at %d of %d, want %d of %d", st.CurrentNum, st.Max, c.done, c.wantMax)
			}
		})
	}
}

// TestFinishClearsTheBar: a bar left by an interrupted epoch is blanked
// out, the cursor back at the start of its line; an epoch with no bar
// (none drawn yet, or too narrow a terminal) writes nothing.
func TestFinishClearsTheBar(t *testing.T) {
	cases := []struct {
		name  string
		steps int // steps trained before the interruption
	}{
		{"interrupted mid-epoch", 5},
		{"interrupted before the first step", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			p := &progress{out: &out, epochs: 2}
			p.epochStart(1, 1875)
			for s := 1; s <= c.steps; s++ {
				p.step(model.StepStats{Epoch: 1, Step: s, Steps: 1875})
			}
			drawn := out.Len()
			p.finish()
			rows := strings.Split(out.String(), "\r")
			if c.steps == 0 {
				if out.Len() != 0 {
					t.Errorf("no bar, but finish wrote %q", out.String())
				}
				return
			}
			last := rows[len(rows)-1]
			blank := rows[len(rows)-2]
			if drawn == 0 || last != "" || strings.TrimLeft(blank, " ") != "" || len(blank) < len(rows[1]) {
				t.Errorf("after finish the terminal shows %q, want the bar's line blanked and the cursor at its start", out.String())
			}
		})
	}
}

// TestUTF8Locale: the first of LC_ALL, LC_CTYPE and LANG that is set
// decides, and only a UTF-8 one gets the block bar; elsewhere the bar is
// ASCII.
func TestUTF8Locale(t *testing.T) {
	cases := []struct {
		name                 string
		lcAll, lcCtype, lang string
		want                 bool
	}{
		{"LANG UTF-8", "", "", "en_US.UTF-8", true},
		{"LANG utf8", "", "", "C.utf8", true},
		{"LANG C", "", "", "C", false},
		{"nothing set", "", "", "", false},
		{"LC_ALL C over LANG UTF-8", "C", "", "en_US.UTF-8", false},
		{"LC_CTYPE UTF-8 over LANG C", "", "de_DE.UTF-8", "C", true},
		{"LC_ALL UTF-8 over LC_CTYPE POSIX", "en_GB.UTF-8", "POSIX", "", true},
		{"Latin-1", "", "", "de_DE.ISO-8859-1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := utf8Locale(c.lcAll, c.lcCtype, c.lang); got != c.want {
				t.Fatalf("utf8Locale(%q, %q, %q) = %v, want %v", c.lcAll, c.lcCtype, c.lang, got, c.want)
			}
			bar, _ := newBar(io.Discard, model.StepStats{Epoch: 1, Step: 1, Steps: 4}, 1, !c.want)
			_ = bar.Set(2)
			if blocks := strings.Contains(bar.String(), "█"); blocks != c.want {
				t.Errorf("bar %q: block characters %v, want %v", bar.String(), blocks, c.want)
			}
		})
	}
}
