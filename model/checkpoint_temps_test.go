package model

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRemoveCheckpointTemps(t *testing.T) {
	tests := []struct {
		name    string
		folder  bool // made as a folder, not a file
		removed bool
	}{
		{name: ".checkpoint-e000001-s0000000.safetensors.tmp-k3j9x1", removed: true},
		{name: ".checkpoint-e000012-s0001875.safetensors.tmp-0", removed: true},
		{name: ".checkpoint-e1234567-s12345678.safetensors.tmp-abc", removed: true},
		{name: "checkpoint-e000001-s0000000.safetensors"}, // a checkpoint
		{name: ".checkpoint.lock"},                                   // the lock
		{name: ".model.safetensors.tmp-k3j9x1"},                      // another target's
		{name: ".checkpoint-e000001-s0000000.safetensors.tmp-"},      // no suffix
		{name: ".checkpoint-e000001-s0000000.safetensors.tmp-AB"},    // not ours: capitals
		{name: ".checkpoint-e1-s0.safetensors.tmp-k3j9x1"},           // not a name we make
		{name: "checkpoint-e000001-s0000000.safetensors.tmp-k3j9x1"}, // no dot
		{name: ".checkpoint-e000002-s0000000.safetensors.tmp-dir", folder: true},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name)
		var err error
		if tt.folder {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte("x"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveCheckpointTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		_, statErr := os.Lstat(filepath.Join(dir, tt.name))
		if gone := os.IsNotExist(statErr); gone != tt.removed || slices.Contains(removed, tt.name) != tt.removed {
			t.Errorf("%s: gone %v, reported %v; want %v", tt.name, gone, slices.Contains(removed, tt.name), tt.removed)
		}
	}
	if _, err := RemoveCheckpointTemps(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing folder: no error")
	}
}
