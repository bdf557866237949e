//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointTempsRemoved: a run that takes a checkpoint folder deletes
// the temporary files a killed run's checkpoint saves left there, and
// nothing else; a refused run deletes nothing.
func TestCheckpointTempsRemoved(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	ck, _ := trainedCheckpoint(t, dataDir)
	const leftover = ".checkpoint-e000001-s0000100.safetensors.tmp-k3j9x1"
	const stranger = ".notes.txt.tmp-k3j9x1"
	tests := []struct {
		name    string
		args    []string
		code    int
		removed bool
	}{
		{name: "resumed", args: []string{"-resume", "-epochs", "1"}, code: exitOK, removed: true},
		{name: "refused: checkpoints there without -resume", args: []string{"-epochs", "1"}, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := checkpointFolderAt(t, ck, 1, 0, 1)
			for _, name := range []string{leftover, stranger} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"-data-dir", dataDir, "-checkpoint-dir", dir, "-log-format", "json"}, tt.args...)
			code, _, stderr := runTrain(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, leftover)); os.IsNotExist(err) != tt.removed {
				t.Errorf("leftover removed: %v, want %v", os.IsNotExist(err), tt.removed)
			}
			if logged := strings.Contains(stderr, "removed temporary files of interrupted checkpoint saves"); logged != tt.removed {
				t.Errorf("removal logged: %v, want %v:\n%s", logged, tt.removed, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, stranger)); err != nil {
				t.Errorf("another file's temporary file: %v", err)
			}
		})
	}
}
