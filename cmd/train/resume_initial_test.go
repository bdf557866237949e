//go:build unix

package main

import (
	"context"
	"path/filepath"
	"testing"

	"mnist/model"
)

// TestResumeKeepsInitialWeights: a run that started from a -load file
// records it in its checkpoints, and the run resumed from them names it in
// its next checkpoint and in its saved model, as the run would have
// unstopped; a run from the seed's initialisation names none.
func TestResumeKeepsInitialWeights(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	ck, _ := trainedCheckpoint(t, dataDir)
	for _, initial := range []string{"", "base/model.safetensors"} {
		t.Run("initial weights "+initial, func(t *testing.T) {
			started := *ck
			started.InitialWeights = initial
			dir := checkpointFolderAt(t, &started, 1, 0, 2)
			saved := filepath.Join(t.TempDir(), "m.safetensors")
			code, _, stderr := runTrain(t, "-data-dir", dataDir, "-resume", "-checkpoint-dir", dir, "-save", saved)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			_, meta := readSafetensorsHeader(t, saved)
			if got, ok := meta["initial_weights"]; got != initial || ok != (initial != "") {
				t.Errorf("saved model: initial_weights %q (present %v), want %q", got, ok, initial)
			}
			next, err := model.LoadCheckpoint(context.Background(), model.CheckpointPath(dir, model.TrainState{Epoch: 2}))
			if err != nil {
				t.Fatal(err)
			}
			if next.InitialWeights != initial {
				t.Errorf("next checkpoint: initial weights %q, want %q", next.InitialWeights, initial)
			}
		})
	}
}
