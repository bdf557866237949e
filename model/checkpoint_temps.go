package model

import (
	"fmt"
	"os"
	"path/filepath"

	"mnist/data/fileio"
)

// RemoveCheckpointTemps removes from dir the temporary files that
// checkpoint saves killed before their rename left behind
// (".checkpoint-e000001-s0000000.safetensors.tmp-k3j9x1"), and returns the
// names it removed. Each is as large as a checkpoint, and a run killed at
// every epoch's end would otherwise pile them up. It is for a caller that
// holds the folder's lock (LockCheckpointDir) and is not saving: then no
// process is writing one of them. Other files, other programs' temporary
// files and entries that are not regular files are left alone.
func RemoveCheckpointTemps(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoint folder: %w", err) // names dir
	}
	var removed []string
	for _, e := range ents {
		if !isCheckpointTemp(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("remove a leftover of an interrupted checkpoint save: %w", err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// isCheckpointTemp reports whether name is a temporary file fileio.WriteFile
// makes for a checkpoint's name: a dot, the name, ".tmp-" and its suffix.
func isCheckpointTemp(name string) bool {
	target, ok := fileio.TempTarget(name)
	return ok && checkpointName.MatchString(target)
}
