//go:build unix

package main

import (
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
			last := lastLine(stderr)
			t.Logf("exit %d: %s", code, last)
			for _, want := range []string{"train: epoch 1 step ", "learning rate 1e+30", "training diverged"} {
				if !strings.Contains(last, want) {
					t.Errorf("last stderr line %q lacks %q", last, want)
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
			if last := lastLine(logs); last != "train: interrupted" {
				t.Errorf("last stderr line %q, want %q", last, "train: interrupted")
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
