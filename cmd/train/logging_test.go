package main

import (
	"bytes"
	"image"
	"image/color"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestResultsWhateverLogLevel: the evaluation and prediction entries are
// written at every -log-level, in both formats: the level filters progress
// and diagnostics, never results. Each case also checks that the level
// does filter (an info entry that is not a result is gone above info).
func TestResultsWhateverLogLevel(t *testing.T) {
	dir := t.TempDir()
	saved, img := filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "digit.png")
	writeModelFile(t, saved, nil)
	digit := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 6; y < 22; y++ {
		for x := 12; x < 16; x++ {
			digit.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	writePNG(t, img, digit)
	cases := []struct {
		format, level string
		evaluation    string // how the evaluation entry starts its message
		prediction    string // in stdout (text) or stderr (json)
	}{
		{"text", "info", "msg=evaluation", img + ": "},
		{"text", "warn", "msg=evaluation", img + ": "},
		{"text", "error", "msg=evaluation", img + ": "},
		{"json", "info", `"msg":"evaluation"`, `"msg":"prediction"`},
		{"json", "warn", `"msg":"evaluation"`, `"msg":"prediction"`},
		{"json", "error", `"msg":"evaluation"`, `"msg":"prediction"`},
	}
	for _, c := range cases {
		t.Run(c.format+" "+c.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := newLogger(options{logFormat: c.format, logLevel: c.level}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("progress")
			testReport(1, false).log(log)
			if got := buf.String(); !strings.Contains(got, c.evaluation) || strings.Contains(got, "progress") != (c.level == "info") {
				t.Errorf("log at -log-level %s:\n%s\nwant the evaluation entry, and the info entry only at info", c.level, got)
			}
			code, stdout, stderr := runInProcess("-log-format", c.format, "-log-level", c.level, "-load", saved, "-predict", img)
			out := stdout
			if c.format == "json" {
				out = stderr
			}
			if code != exitOK || !strings.Contains(out, c.prediction) {
				t.Errorf("-predict at -log-level %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant %q", c.level, code, stdout, stderr, c.prediction)
			}
		})
	}
}

// TestColorsWanted: NO_COLOR set to anything, or TERM=dumb, turns the text
// log's colours off, and newLogger follows it.
func TestColorsWanted(t *testing.T) {
	cases := []struct {
		noColor, term string
		want          bool
	}{
		{"", "xterm-256color", true},
		{"", "", true},
		{"1", "xterm-256color", false},
		{"0", "xterm", false}, // any value counts (no-color.org)
		{"", "dumb", false},
		{"1", "dumb", false},
	}
	for _, c := range cases {
		t.Run("NO_COLOR="+c.noColor+" TERM="+c.term, func(t *testing.T) {
			if got := colorsWanted(c.noColor, c.term); got != c.want {
				t.Fatalf("colorsWanted(%q, %q) = %v, want %v", c.noColor, c.term, got, c.want)
			}
			t.Setenv("NO_COLOR", c.noColor)
			t.Setenv("TERM", c.term)
			log, err := newLogger(options{logFormat: "text", logLevel: "info"}, new(bytes.Buffer))
			if err != nil {
				t.Fatal(err)
			}
			if f := log.Formatter.(*logrus.TextFormatter); f.DisableColors == c.want {
				t.Errorf("newLogger: DisableColors %v, want %v", f.DisableColors, !c.want)
			}
		})
	}
}

// TestParseLogLevel: -log-level takes the four levels -h names, and
// refuses logrus's others in one line naming them.
func TestParseLogLevel(t *testing.T) {
	cases := []struct {
		in   string
		want logrus.Level
		ok   bool
	}{
		{"debug", logrus.DebugLevel, true},
		{"info", logrus.InfoLevel, true},
		{"warn", logrus.WarnLevel, true},
		{"error", logrus.ErrorLevel, true},
		{"warning", 0, false},
		{"trace", 0, false},
		{"fatal", 0, false},
		{"panic", 0, false},
		{"INFO", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseLogLevel(c.in)
			if (err == nil) != c.ok || (c.ok && got != c.want) {
				t.Fatalf("parseLogLevel(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
			}
			if err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "use debug, info, warn or error")) {
				t.Errorf("error %q should be one line naming the levels", err)
			}
		})
	}
}
