//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interruptTrain runs the built binary with args, waits until its start-up
// "training" log entry has appeared and then for settle, sends sig, and
// returns the exit code with everything printed.
func interruptTrain(t *testing.T, sig syscall.Signal, settle time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read stderr as it streams, to know when training has begun.
	var logs strings.Builder
	training := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		started := false
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			logs.WriteString(line + "\n")
			if !started && (strings.Contains(line, `"msg":"training"`) || strings.Contains(line, "msg=training")) {
				started = true
				close(training)
			}
		}
	}()
	select {
	case <-training:
	case <-done:
		// Stderr closed: the process ended. Unless it got to training
		// first, there is nothing to interrupt (a GPU that would not
		// start, say): say so now rather than wait out the minutes below.
		select {
		case <-training:
		default:
			cmd.Wait()
			t.Fatalf("train exited before training began:\n%s", logs.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		t.Fatalf("no start-up log entry within 2 minutes:\n%s", logs.String())
	}
	time.Sleep(settle)
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-done // all of stderr read before Wait closes the pipe
	err = cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("after %v: wait: %v", sig, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), logs.String()
}

// TestSignalAfterTrainingKeepsOutputs: a signal that comes once training
// is over (here as the last epoch's entry is logged, so that the final
// evaluation starts with the run's context cancelled) stops nothing: the
// evaluation runs to its end, the finished model is reported, saved and
// its metrics written, and the run exits 130.
func TestSignalAfterTrainingKeepsOutputs(t *testing.T) {
	dataDir := realDataDir(t)
	out := t.TempDir()
	saved, metrics := filepath.Join(out, "m.safetensors"), filepath.Join(out, "m.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code, _, stderr := runAt(t, ctx, `"msg":"epoch 1/1"`, cancel,
		"-data-dir", dataDir, "-epochs", "1", "-batch-size", "600", "-log-format", "json", "-save", saved, "-metrics-out", metrics)
	if code != exitInterrupted {
		t.Fatalf("exit code %d, want %d:\n%s", code, exitInterrupted, stderr)
	}
	if msg := finalError(t, stderr, "json", exitInterrupted); msg != "interrupted" {
		t.Errorf("final error %q, want %q", msg, "interrupted")
	}
	if e := evaluationEntry(t, stderr); e["test_images"] != 10000.0 || e["epochs"] != 1.0 || e["interrupted"] != nil {
		t.Errorf("evaluation entry %v, want the finished model of 1 epoch over 10000 test images", e)
	}
	doc := readMetrics(t, metrics)
	checkMetricsDoc(t, doc, 10000)
	if *doc.Interrupted || len(doc.Epochs) != 1 {
		t.Errorf("metrics: interrupted %v with %d epochs, want false and 1", *doc.Interrupted, len(doc.Epochs))
	}
	if _, meta := readSafetensorsHeader(t, saved); meta["epochs"] != "1" || meta["interrupted"] != "" {
		t.Errorf("saved model's epochs %q, interrupted %q; want 1 and none", meta["epochs"], meta["interrupted"])
	}
}
