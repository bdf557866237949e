package model

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"mnist/data/fileio"
)

// DamagedCheckpoint is a checkpoint file that did not read back whole.
type DamagedCheckpoint struct {
	Path string
	Err  error // why, naming Path
}

// LoadNewestCheckpoint loads the newest checkpoint in dir that reads back
// whole. A newer one that does not (truncated by a full disk, damaged on
// disk, or not a checkpoint at all) is passed over: bad lists each such
// file, newest first, for the caller to warn about and set aside
// (SetAsideCheckpoint). The older checkpoint kept beside the newest
// (PruneCheckpoints keeps two) is what makes this possible. Only when no
// file loads is it an error, wrapping fs.ErrNotExist when the folder holds
// no checkpoint at all. A cancelled ctx stops it.
func LoadNewestCheckpoint(ctx context.Context, dir string) (ck *Checkpoint, path string, bad []DamagedCheckpoint, err error) {
	files, err := ListCheckpoints(dir)
	if err != nil {
		return nil, "", nil, err
	}
	if len(files) == 0 {
		return nil, "", nil, fmt.Errorf("no checkpoint in %s: %w", dir, fs.ErrNotExist)
	}
	for i := len(files) - 1; i >= 0; i-- {
		ck, err := LoadCheckpoint(ctx, files[i])
		if err == nil {
			return ck, files[i], bad, nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, "", bad, err
		}
		bad = append(bad, DamagedCheckpoint{Path: files[i], Err: err})
	}
	return nil, "", bad, fmt.Errorf("none of the %d checkpoints in %s can be read; the newest: %w", len(files), dir, bad[0].Err)
}

// damagedSuffix ends the name of a damaged checkpoint set aside.
const damagedSuffix = ".damaged"

// SetAsideCheckpoint renames the damaged checkpoint file at path to path +
// ".damaged" (".damaged.2", ".damaged.3", ... when that is taken) and
// returns the new name, which ListCheckpoints does not match: left under
// its name, a damaged file newer than the checkpoint resumed from would
// count among the newest that PruneCheckpoints keeps, and good ones would
// be removed in its place. Nothing is deleted: the file stays to be looked
// at. Only a regular file is renamed; anything else of a checkpoint's name
// was not written by this program.
func SetAsideCheckpoint(path string) (string, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("set aside damaged checkpoint: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("set aside damaged checkpoint: %s is not a regular file; it was not written by this program", path)
	}
	for n := 1; n <= 100; n++ {
		aside := path + damagedSuffix
		if n > 1 {
			aside += "." + strconv.Itoa(n)
		}
		if _, err := os.Lstat(aside); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("set aside damaged checkpoint: %w", err)
		}
		if err := os.Rename(path, aside); err != nil {
			return "", fmt.Errorf("set aside damaged checkpoint: %w", err)
		}
		if err := fileio.SyncDir(filepath.Dir(path)); err != nil {
			return aside, fmt.Errorf("set aside damaged checkpoint %s as %s: %w", path, aside, err)
		}
		return aside, nil
	}
	return "", fmt.Errorf("set aside damaged checkpoint %s: %s and its 99 next names are taken", path, path+damagedSuffix)
}
