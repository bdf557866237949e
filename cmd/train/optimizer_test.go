//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSGDTrainsAndResumesExactly: -optimizer sgd learns (well above chance
// after one epoch), and 1 epoch plus -resume to 2 saves the same model, byte
// for byte, as 2 epochs straight: the checkpoint carries SGD's velocity
// without the checkpoint code knowing it. A resume that names another
// optimizer is refused as a usage error.
func TestSGDTrainsAndResumesExactly(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("training on MNIST skipped in -short mode")
	}
	tmp := t.TempDir()
	common := []string{"-optimizer", "sgd", "-lr", "0.01", "-batch-size", "256", "-log-format", "json"}
	train := func(what string, want int, args ...string) (map[string]any, string) {
		t.Helper()
		code, _, stderr := runTrain(t, append(args, common...)...)
		if code != want {
			t.Fatalf("%s: exit code %d, want %d:\n%s", what, code, want, stderr)
		}
		if want != exitOK {
			return nil, stderr
		}
		return evaluationEntry(t, stderr), stderr
	}

	straight, _ := train("2 epochs", exitOK, "-epochs", "2", "-save", filepath.Join(tmp, "straight.safetensors"))
	if acc, _ := straight["test_accuracy"].(float64); acc < 0.85 {
		t.Errorf("SGD with momentum: test accuracy %v after 2 epochs, want > 0.85", acc)
	}
	if straight["optimizer"] != "sgd" {
		t.Errorf("evaluation entry names optimizer %v, want sgd", straight["optimizer"])
	}
	dir := filepath.Join(tmp, "ck")
	train("1 epoch", exitOK, "-epochs", "1", "-checkpoint-dir", dir)
	resumed, _ := train("resume to 2", exitOK, "-epochs", "2", "-resume", "-checkpoint-dir", dir, "-save", filepath.Join(tmp, "resumed.safetensors"))
	sameEvaluation(t, "sgd: 1 epoch + resume", resumed, straight)
	a, errA := os.ReadFile(filepath.Join(tmp, "straight.safetensors"))
	b, errB := os.ReadFile(filepath.Join(tmp, "resumed.safetensors"))
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("-save of the resumed SGD run differs from the uninterrupted run's (%v, %v)", errA, errB)
	}

	code, _, stderr := runTrain(t, "-epochs", "3", "-resume", "-checkpoint-dir", dir, "-optimizer", "adam")
	if code != exitUsage || !strings.Contains(stderr, "-optimizer adam differs from the checkpoint's sgd") {
		t.Errorf("resuming an SGD run with -optimizer adam: exit %d, stderr:\n%s", code, stderr)
	}
}
