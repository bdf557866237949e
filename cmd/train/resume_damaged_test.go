//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mnist/model"
)

// TestResumeSkipsDamagedNewestCheckpoint: when the newest checkpoint is
// truncated (a full disk, say), -resume warns, naming it, and carries on
// from the one before it, ending exactly where an uninterrupted run ends.
func TestResumeSkipsDamagedNewestCheckpoint(t *testing.T) {
	t.Parallel()
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

// TestResumeSetsDamagedCheckpointAside: a damaged checkpoint newer than the
// one resumed from (here one cut short part-way into epoch 2) is renamed
// to NAME.damaged, with a warning naming that, rather than left where
// pruning would keep it and delete a good one: after the resumed run's
// next checkpoint, the folder holds the two newest good ones and the
// damaged file, unchanged.
func TestResumeSetsDamagedCheckpointAside(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	ck, _ := trainedCheckpoint(t, dataDir)
	dir := checkpointFolderAt(t, ck, 1, 0, 2)
	good := model.CheckpointPath(dir, model.TrainState{Epoch: 1})
	damaged := model.CheckpointPath(dir, model.TrainState{Epoch: 1, Step: 50})
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runTrain(t, "-data-dir", dataDir, "-resume", "-checkpoint-dir", dir, "-log-format", "json")
	if code != exitOK {
		t.Fatalf("resume: exit %d:\n%s", code, stderr)
	}
	aside := damaged + ".damaged"
	warned := false
	for _, line := range strings.Split(stderr, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["level"] == "warning" && strings.HasPrefix(fmt.Sprint(e["msg"]), "skipping a damaged checkpoint") {
			warned = e["renamed_to"] == aside && strings.Contains(fmt.Sprint(e["error"]), filepath.Base(damaged))
		}
	}
	if !warned {
		t.Errorf("no warning naming %s and its new name %s:\n%s", filepath.Base(damaged), aside, stderr)
	}
	want := []string{filepath.Base(good), "checkpoint-e000002-s0000000.safetensors"}
	if got := checkpointFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("the folder holds the checkpoints %v, want %v", got, want)
	}
	if b2, err := os.ReadFile(aside); err != nil || len(b2) != len(b)/2 {
		t.Errorf("%s: %d bytes (%v), want the damaged file's %d", aside, len(b2), err, len(b)/2)
	}
}
