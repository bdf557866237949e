//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"mnist/model"
)

// checkpointFiles lists the checkpoint files in dir by name.
func checkpointFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files
}

// sameEvaluation fails unless two runs' evaluation entries have the same
// test accuracy and loss, to the bit (JSON floats print all digits).
func sameEvaluation(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	if got["test_accuracy"] != want["test_accuracy"] || got["test_loss"] != want["test_loss"] {
		t.Errorf("%s: test accuracy %v loss %v, want %v and %v", what, got["test_accuracy"], got["test_loss"], want["test_accuracy"], want["test_loss"])
	}
}

// TestCheckpointResumeIsExact runs the real data at batch 256 (half a
// second an epoch here): 2 epochs straight, versus 1 epoch, then -resume to
// 2; and, at batch 8 (about 2.3 s an epoch, so that the signal surely comes
// mid-epoch), 1 epoch interrupted by SIGINT, then -resume to 1, versus 1
// epoch straight. Each resumed run must report the same test accuracy and
// loss as the uninterrupted one, and -save the same file byte for byte.
func TestCheckpointResumeIsExact(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("training on MNIST skipped in -short mode")
	}
	tmp := t.TempDir()
	common := []string{"-batch-size", "256", "-log-format", "json"}
	slow := []string{"-batch-size", "8", "-log-format", "json"}
	run := func(what string, want int, args ...string) map[string]any {
		t.Helper()
		code, _, stderr := runTrain(t, args...)
		if code != want {
			t.Fatalf("%s: exit code %d, want %d:\n%s", what, code, want, stderr)
		}
		return evaluationEntry(t, stderr)
	}
	train := func(what string, want int, args ...string) map[string]any {
		t.Helper()
		return run(what, want, append(args, common...)...)
	}

	straight := filepath.Join(tmp, "straight")
	want2 := train("2 epochs", exitOK, "-epochs", "2", "-checkpoint-dir", straight, "-save", filepath.Join(tmp, "straight.safetensors"))
	if got := checkpointFiles(t, straight); strings.Join(got, " ") != "checkpoint-e000001-s0000000.safetensors checkpoint-e000002-s0000000.safetensors" {
		t.Errorf("after 2 epochs the folder holds %v, want the epoch 1 and 2 checkpoints", got)
	}

	stopped := filepath.Join(tmp, "stopped")
	train("1 epoch", exitOK, "-epochs", "1", "-checkpoint-dir", stopped)
	got2 := train("resume to 2", exitOK, "-epochs", "2", "-resume", "-checkpoint-dir", stopped, "-save", filepath.Join(tmp, "resumed.safetensors"))
	sameEvaluation(t, "1 epoch + resume", got2, want2)
	if got2["epochs"] != 2.0 || got2["resumed_after_epoch"] != 1.0 {
		t.Errorf("resumed run reports epochs %v, resumed after %v; want 2 and 1", got2["epochs"], got2["resumed_after_epoch"])
	}
	a, errA := os.ReadFile(filepath.Join(tmp, "straight.safetensors"))
	b, errB := os.ReadFile(filepath.Join(tmp, "resumed.safetensors"))
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("-save of the resumed run differs from the uninterrupted run's (%v, %v)", errA, errB)
	}

	// Ctrl-C in the middle of epoch 1 saves the position after the last
	// step; resuming finishes that epoch exactly as a run never stopped.
	want1 := run("1 epoch at batch 8", exitOK, append([]string{"-epochs", "1"}, slow...)...)
	interrupted := filepath.Join(tmp, "interrupted")
	code, _, stderr := interruptTrain(t, syscall.SIGINT, 300*time.Millisecond, append([]string{"-epochs", "1", "-checkpoint-dir", interrupted}, slow...)...)
	if code != exitInterrupted {
		t.Fatalf("SIGINT: exit code %d, want %d:\n%s", code, exitInterrupted, stderr)
	}
	if !strings.Contains(stderr, `"msg":"saved checkpoint"`) || !strings.Contains(stderr, `"interrupted":true`) {
		t.Errorf("interrupted run logged no checkpoint or no partial report:\n%s", stderr)
	}
	files := checkpointFiles(t, interrupted)
	if len(files) != 1 || !strings.HasPrefix(files[0], "checkpoint-e000000-s") {
		t.Errorf("interrupted in epoch 1, the folder holds %v, want one mid-epoch-1 checkpoint", files)
	}
	got1 := run("resume after SIGINT", exitOK, append([]string{"-epochs", "1", "-resume", "-checkpoint-dir", interrupted}, slow...)...)
	sameEvaluation(t, "SIGINT + resume", got1, want1)

	// Misuse of the saved folders.
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"other batch size", []string{"-epochs", "3", "-resume", "-checkpoint-dir", stopped, "-batch-size", "128"}, exitUsage, "-batch-size 128 differs from the checkpoint's 256"},
		{"other seed", []string{"-epochs", "3", "-resume", "-checkpoint-dir", stopped, "-seed", "7"}, exitUsage, "-seed 7 differs"},
		{"fresh run over checkpoints", []string{"-epochs", "1", "-checkpoint-dir", stopped}, exitUsage, "already holds checkpoints"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runTrain(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit code %d, want %d with %q:\n%s", code, tt.code, tt.want, stderr)
			}
		})
	}
}

// TestCheckpointFailureKeepsTheModel: a checkpoint that cannot be written
// (its name taken by a folder, made once training has begun) is logged at
// error level, naming it, and training goes on; the model is evaluated,
// saved and its metrics written, and only then does the run fail, exit 1,
// with one line saying how many checkpoints failed and naming the first.
func TestCheckpointFailureKeepsTheModel(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	out := t.TempDir()
	ck := filepath.Join(out, "ck")
	blocked := filepath.Join(ck, "checkpoint-e000001-s0000000.safetensors")
	saved, metrics := filepath.Join(out, "m.safetensors"), filepath.Join(out, "m.json")
	code, _, stderr := runAt(t, context.Background(), `"msg":"training"`, func() {
		if err := os.Mkdir(blocked, 0o755); err != nil {
			t.Error(err)
		}
	}, "-data-dir", dataDir, "-epochs", "2", "-batch-size", "600", "-log-format", "json",
		"-checkpoint-dir", ck, "-save", saved, "-metrics-out", metrics)
	if code != exitRuntime {
		t.Fatalf("exit code %d, want %d:\n%s", code, exitRuntime, stderr)
	}
	if msg := finalError(t, stderr, "json", exitRuntime); !strings.Contains(msg, "1 of 2 checkpoints failed") || !strings.Contains(msg, blocked) {
		t.Errorf("final error %q should say 1 of 2 checkpoints failed, naming %s", msg, blocked)
	}
	logged := false
	for _, line := range strings.Split(stderr, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["level"] == "error" && e["msg"] == "checkpoint failed; training goes on" {
			logged = strings.Contains(fmt.Sprint(e["error"]), blocked)
		}
	}
	if !logged {
		t.Errorf("no error entry naming %s for the failed checkpoint:\n%s", blocked, stderr)
	}
	if e := evaluationEntry(t, stderr); e["epochs"] != 2.0 || e["interrupted"] != nil {
		t.Errorf("evaluation entry %v, want 2 epochs, not interrupted", e)
	}
	if doc := readMetrics(t, metrics); len(doc.Epochs) != 2 || *doc.Interrupted {
		t.Errorf("metrics hold %d epochs, interrupted %v; want 2, false", len(doc.Epochs), *doc.Interrupted)
	}
	if _, meta := readSafetensorsHeader(t, saved); meta["epochs"] != "2" {
		t.Errorf("saved model's epochs %q, want 2", meta["epochs"])
	}
	if got := checkpointFiles(t, ck); !slices.Contains(got, "checkpoint-e000002-s0000000.safetensors") {
		t.Errorf("the folder holds %v, want epoch 2's checkpoint, tried again after epoch 1's failed", got)
	}
}

// trainedCheckpoint is the checkpoint a 1-epoch run at batch 600 writes
// into the folder dir.
func trainedCheckpoint(t *testing.T, dataDir string) (ck *model.Checkpoint, dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "ck")
	code, _, stderr := runTrain(t, "-data-dir", dataDir, "-epochs", "1", "-batch-size", "600", "-checkpoint-dir", dir)
	if code != exitOK {
		t.Fatalf("1 epoch: exit %d:\n%s", code, stderr)
	}
	ck, err := model.LoadCheckpoint(context.Background(), model.CheckpointPath(dir, model.TrainState{Epoch: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return ck, dir
}

// checkpointFolderAt writes ck into a new folder as a checkpoint at epoch
// epochs and step steps, with running totals to match, of a run whose
// target was target epochs (0: not recorded), and returns the folder.
func checkpointFolderAt(t *testing.T, ck *model.Checkpoint, epochs, steps, target int) string {
	t.Helper()
	c := *ck
	c.Config.Epochs = target
	seen := steps * c.Config.BatchSize
	c.Train.Epoch, c.Train.Step = epochs, steps
	c.Train.Seen, c.Train.Correct, c.Train.LossSum = seen, seen*9/10, 0.3*float64(seen)
	dir := filepath.Join(t.TempDir(), "ck")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := model.SaveCheckpoint(model.CheckpointPath(dir, c.Train), &c); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestResumeEpochsBelowProgress: -resume with an -epochs total that the
// checkpoint has passed (fewer epochs than it finished, or as many while it
// is part-way into the next) is a usage error before anything is trained;
// -epochs 0 evaluates the checkpoint, a mid-epoch one reported, saved and
// written as the partial model it is, one at an epoch's end as finished.
func TestResumeEpochsBelowProgress(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	ck, _ := trainedCheckpoint(t, dataDir)
	tests := []struct {
		name          string
		steps, epochs int // the checkpoint's steps after 2 epochs; -epochs
		refusal       string
		partial       bool
	}{
		{name: "below the finished epochs", steps: 0, epochs: 1, refusal: "-epochs 1 is below the checkpoint's progress (2 epochs, "},
		{name: "below a mid-epoch checkpoint's", steps: 50, epochs: 1, refusal: "-epochs 1 is below the checkpoint's progress (2 epochs and 50 steps, "},
		{name: "the finished epochs of a mid-epoch checkpoint", steps: 50, epochs: 2, refusal: "-epochs 2 is below the checkpoint's progress (2 epochs and 50 steps, "},
		{name: "the finished epochs", steps: 0, epochs: 2},
		{name: "evaluate a checkpoint at an epoch's end", steps: 0, epochs: 0},
		{name: "evaluate a mid-epoch checkpoint", steps: 50, epochs: 0, partial: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := checkpointFolderAt(t, ck, 2, tt.steps, 3)
			out := t.TempDir()
			saved, metrics := filepath.Join(out, "m.safetensors"), filepath.Join(out, "m.json")
			code, _, stderr := runTrain(t, "-data-dir", dataDir, "-resume", "-checkpoint-dir", dir, "-epochs", fmt.Sprint(tt.epochs),
				"-log-format", "json", "-save", saved, "-metrics-out", metrics)
			if tt.refusal != "" {
				if msg := finalError(t, stderr, "json", exitUsage); code != exitUsage || !strings.Contains(msg, tt.refusal) || strings.Contains(stderr, `"msg":"training"`) {
					t.Errorf("exit %d, %q; want %d with %q, before training:\n%s", code, msg, exitUsage, tt.refusal, stderr)
				}
				return
			}
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			e := evaluationEntry(t, stderr)
			interrupted := e["interrupted"] == true
			if e["epochs"] != 2.0 || interrupted != tt.partial {
				t.Errorf("evaluation entry: %v epochs, interrupted %v; want 2 and %v", e["epochs"], interrupted, tt.partial)
			}
			if doc := readMetrics(t, metrics); *doc.Interrupted != tt.partial || len(doc.Epochs) != 0 {
				t.Errorf("metrics: interrupted %v with %d epochs; want %v and none trained", *doc.Interrupted, len(doc.Epochs), tt.partial)
			}
			_, meta := readSafetensorsHeader(t, saved)
			if meta["epochs"] != "2" || (meta["interrupted"] == "true") != tt.partial {
				t.Errorf("saved model: epochs %q, interrupted %q; want 2 and %v", meta["epochs"], meta["interrupted"], tt.partial)
			}
		})
	}
}

// TestResumeAdoptsTargetEpochs: -resume carries on to the stopped run's
// target of epochs, which its checkpoint records, unless -epochs gives
// another total; a checkpoint that does not record it leaves -epochs's
// default. The binary, resuming a finished 1-epoch run without -epochs,
// trains nothing more.
func TestResumeAdoptsTargetEpochs(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	ck, trained := trainedCheckpoint(t, dataDir)
	tests := []struct {
		name   string
		target int // recorded in the checkpoint, at epoch 1; 0: not recorded
		args   []string
		want   int
	}{
		{"the recorded target", 3, nil, 3},
		{"-epochs given", 3, []string{"-epochs", "4"}, 4},
		{"-epochs 0 given", 3, []string{"-epochs", "0"}, 0},
		{"no target recorded", 0, nil, model.DefaultConfig().Epochs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := checkpointFolderAt(t, ck, 1, 0, tt.target)
			o, err := parseFlags(append([]string{"-resume", "-checkpoint-dir", dir}, tt.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			log := logrus.New()
			log.SetOutput(io.Discard)
			if _, _, err := resumeCheckpoint(context.Background(), &o, log); err != nil {
				t.Fatal(err)
			}
			if o.cfg.Epochs != tt.want {
				t.Errorf("resumes to %d epochs, want %d", o.cfg.Epochs, tt.want)
			}
		})
	}
	code, _, stderr := runTrain(t, "-data-dir", dataDir, "-resume", "-checkpoint-dir", trained, "-log-format", "json")
	if code != exitOK {
		t.Fatalf("resume: exit %d:\n%s", code, stderr)
	}
	if e := evaluationEntry(t, stderr); e["epochs"] != 1.0 || strings.Contains(stderr, `"msg":"epoch 2/`) {
		t.Errorf("resuming a finished 1-epoch run reports %v epochs, want 1 and no training:\n%s", e["epochs"], stderr)
	}
}

// TestResumeErrors: -resume without a folder is a usage error; a folder
// without a readable checkpoint, or none at all, is a runtime error of one
// line. Neither needs the data, and a mistyped folder is not made.
func TestResumeErrors(t *testing.T) {
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "typo")
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "checkpoint-e000003-s0000000.safetensors"), []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"resume without folder", []string{"-resume"}, exitUsage, "-resume needs -checkpoint-dir"},
		{"resume with load", []string{"-resume", "-checkpoint-dir", empty, "-load", "m.safetensors"}, exitUsage, "-resume and -load"},
		{"no checkpoint", []string{"-resume", "-checkpoint-dir", empty}, exitRuntime, "no checkpoint"},
		{"no folder", []string{"-resume", "-checkpoint-dir", missing}, exitRuntime, "-resume: no checkpoint in " + missing + ": the folder does not exist"},
		{"corrupt checkpoint", []string{"-resume", "-checkpoint-dir", corrupt}, exitRuntime, "load checkpoint " + filepath.Join(corrupt, "checkpoint-e000003-s0000000.safetensors")},
		{"checkpoint folder is a file", []string{"-checkpoint-dir", filepath.Join(corrupt, "checkpoint-e000003-s0000000.safetensors")}, exitUsage, "-checkpoint-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runTrain(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d:\n%s", code, tt.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			first := lines[0]
			if !strings.HasPrefix(first, "train: ") || !strings.Contains(first, tt.want) {
				t.Errorf("first stderr line %q should be one error containing %q", first, tt.want)
			}
			if len(lines) != 1 {
				t.Errorf("printed %d lines, want 1:\n%s", len(lines), stderr)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("-resume with a folder that is not there made it (stat: %v)", err)
	}
}
