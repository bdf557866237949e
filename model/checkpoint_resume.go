package model

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// LoadNewestCheckpoint loads the newest checkpoint in dir that reads back
// whole. A newer one that does not (truncated by a full disk, damaged on
// disk, or not a checkpoint at all) is passed over: bad holds one error per
// such file, naming it, for the caller to warn about. The older checkpoint
// kept beside the newest (PruneCheckpoints keeps two) is what makes this
// possible. Only when no file loads is it an error, wrapping fs.ErrNotExist
// when the folder holds no checkpoint at all. A cancelled ctx stops it.
func LoadNewestCheckpoint(ctx context.Context, dir string) (ck *Checkpoint, path string, bad []error, err error) {
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
		bad = append(bad, err)
	}
	return nil, "", bad, fmt.Errorf("none of the %d checkpoints in %s can be read; the newest: %w", len(files), dir, bad[0])
}
