//go:build unix

package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDivergenceExits1: an absurd learning rate makes the loss NaN within a
// few steps. Training stops at once with exit 1 and one line naming the
// epoch, step and learning rate; the garbage model is neither evaluated nor
// reported.
func TestDivergenceExits1(t *testing.T) {
	dir := realDataDir(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			code, stdout, stderr := runTrain(t, "-data-dir", dir, "-lr", "1e30", "-epochs", "1", "-log-format", format)
			if code != exitRuntime {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitRuntime, stderr)
			}
			last := finalError(t, stderr, format, exitRuntime)
			t.Logf("exit %d: %s", code, last)
			for _, want := range []string{"epoch 1 step ", "learning rate 1e+30", "training diverged"} {
				if !strings.Contains(last, want) {
					t.Errorf("final error %q lacks %q", last, want)
				}
			}
			if stdout != "" || strings.Contains(stderr, `"evaluation"`) || strings.Contains(stderr, "msg=evaluation") {
				t.Errorf("a diverged model was reported:\nstdout: %s\nstderr: %s", stdout, stderr)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Errorf("stderr has a panic or stack trace:\n%s", stderr)
			}
		})
	}
}

// TestSignalExits130 starts a default training run, waits until it is
// training (the start-up log entry, then a second of steps), sends a signal
// and expects exit 130 with the partial model evaluated on all 10,000 test
// images and reported as interrupted.
func TestSignalExits130(t *testing.T) {
	dir := realDataDir(t)
	tests := []struct {
		name   string
		signal syscall.Signal
		format string
	}{
		{"SIGINT json", syscall.SIGINT, "json"},
		{"SIGTERM text", syscall.SIGTERM, "text"},
		{"SIGHUP text", syscall.SIGHUP, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, logs := interruptTrain(t, tt.signal, time.Second, "-data-dir", dir, "-log-format", tt.format, "-epochs", "20")
			if code != exitInterrupted {
				t.Fatalf("after %v: exit code %d, want %d\n%s", tt.signal, code, exitInterrupted, logs)
			}
			if last := finalError(t, logs, tt.format, exitInterrupted); last != "interrupted" {
				t.Errorf("final error %q, want %q", last, "interrupted")
			}
			if tt.format == "text" {
				if !strings.Contains(stdout, "Test results (training interrupted: partial model)") ||
					!strings.Contains(stdout, "(10000 images)") {
					t.Errorf("the report does not show the interrupted run on all test images:\n%s", stdout)
				}
				return
			}
			e := evaluationEntry(t, logs)
			if e["interrupted"] != true || e["test_images"] != 10000.0 {
				t.Errorf("evaluation entry %v, want interrupted:true over 10000 test images", e)
			}
			// Signalled after about a second of steps, in the first or
			// second of 20 epochs of about a second each.
			if epochs, _ := e["epochs"].(float64); epochs >= 20 {
				t.Errorf("evaluation entry says %v epochs done: the signal did not stop training", epochs)
			}
			if secs, _ := e["train_seconds"].(float64); secs < 0.5 {
				t.Errorf("train_seconds %v: the signal should have come during training", secs)
			}
			if stdout != "" {
				t.Errorf("json mode printed to stdout: %q", stdout)
			}
		})
	}
}

// finalError is the message of the error that ended a run, from the last
// line of stderr: "train: MESSAGE" in text, in json a log entry with level
// error, the message and exit_code, which must be code.
func finalError(t *testing.T, stderr, format string, code int) string {
	t.Helper()
	last := lastLine(stderr)
	if format != "json" {
		msg, ok := strings.CutPrefix(last, "train: ")
		if !ok {
			t.Errorf("last stderr line %q does not start with \"train: \"", last)
		}
		return msg
	}
	var e struct {
		Level, Msg string
		ExitCode   int `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(last), &e); err != nil || e.Level != "error" || e.ExitCode != code {
		t.Errorf("last stderr line %q: want a JSON error entry with exit_code %d (%v)", last, code, err)
	}
	return e.Msg
}
