//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResumeSkipsDamagedNewestCheckpoint: when the newest checkpoint is
// truncated (a full disk, say), -resume warns, naming it, and carries on
// from the one before it, ending exactly where an uninterrupted run ends.
func TestResumeSkipsDamagedNewestCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("training on MNIST skipped in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "ck")
	common := []string{"-batch-size", "512", "-log-format", "json", "-checkpoint-dir", dir}
	code, _, stderr := runTrain(t, append([]string{"-epochs", "2"}, common...)...)
	if code != exitOK {
		t.Fatalf("2 epochs: exit %d:\n%s", code, stderr)
	}
	want := evaluationEntry(t, stderr)
	newest := filepath.Join(dir, "checkpoint-e000002-s0000000.safetensors")
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newest, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runTrain(t, append([]string{"-epochs", "2", "-resume"}, common...)...)
	if code != exitOK {
		t.Fatalf("resume past a truncated checkpoint: exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "skipping a damaged checkpoint") || !strings.Contains(stderr, filepath.Base(newest)) {
		t.Errorf("no warning naming %s:\n%s", filepath.Base(newest), stderr)
	}
	got := evaluationEntry(t, stderr)
	sameEvaluation(t, "resumed from the older checkpoint", got, want)
	if got["resumed_after_epoch"] != 1.0 {
		t.Errorf("resumed after epoch %v, want 1", got["resumed_after_epoch"])
	}
}
