package model

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadNewestCheckpointSkipsDamagedFiles: a truncated or bit-flipped
// newest checkpoint is passed over for the one before it, with an error
// naming the bad file; with every file bad, or none, it is an error.
func TestLoadNewestCheckpointSkipsDamagedFiles(t *testing.T) {
	cfg := shortConfig()
	tr, e := newTestTrainer(t, cfg, syntheticSet(100, 1))
	var saved []string
	dir := t.TempDir()
	hooks := Hooks{Checkpoint: func(s TrainState) error {
		path := CheckpointPath(dir, s)
		saved = append(saved, path)
		return SaveCheckpoint(path, checkpointOf(t, cfg, tr, e))
	}}
	if _, err := tr.Fit(context.Background(), hooks); err != nil {
		t.Fatal(err)
	}
	older, newest := saved[0], saved[1]
	whole, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), whole...)
	flipped[len(flipped)/2] ^= 0x10

	for _, tc := range []struct {
		name   string
		newest []byte
	}{
		{"truncated", whole[:len(whole)-300]},
		{"one bit flipped", flipped},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(newest, tc.newest, 0o644); err != nil {
				t.Fatal(err)
			}
			ck, path, bad, err := LoadNewestCheckpoint(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if path != older || ck.Train.Epoch != 1 {
				t.Errorf("loaded %s (epoch %d), want %s (epoch 1)", path, ck.Train.Epoch, older)
			}
			if len(bad) != 1 || bad[0].Path != newest || !strings.Contains(bad[0].Err.Error(), filepath.Base(newest)) {
				t.Errorf("bad files %v, want %s with an error naming it", bad, newest)
			}
		})
	}

	if err := os.WriteFile(older, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, bad, err := LoadNewestCheckpoint(context.Background(), dir); err == nil || len(bad) != 2 {
		t.Errorf("every checkpoint damaged: err %v with %d bad, want an error and 2 bad", err, len(bad))
	}
	if _, _, _, err := LoadNewestCheckpoint(context.Background(), t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty folder: %v, want fs.ErrNotExist", err)
	}
}

// TestSetAsideCheckpoint: a damaged checkpoint is renamed to a name the
// listing does not match, the first of NAME.damaged, NAME.damaged.2, ...
// that is free, so that nothing is overwritten; anything but a regular
// file is left alone, with an error naming it.
func TestSetAsideCheckpoint(t *testing.T) {
	tests := []struct {
		name    string
		taken   []string // suffixes already present beside the file
		folder  bool     // the checkpoint's name is a folder's
		want    string   // suffix of the new name; "" for an error
		wantErr string
	}{
		{name: "first", want: ".damaged"},
		{name: "one set aside before", taken: []string{".damaged"}, want: ".damaged.2"},
		{name: "two set aside before", taken: []string{".damaged", ".damaged.2"}, want: ".damaged.3"},
		{name: "not a regular file", folder: true, wantErr: "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := CheckpointPath(dir, TrainState{Epoch: 2, Step: 50})
			var err error
			if tt.folder {
				err = os.Mkdir(path, 0o755)
			} else {
				err = os.WriteFile(path, []byte("damaged"), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, suffix := range tt.taken {
				if err := os.WriteFile(path+suffix, []byte("older"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			aside, err := SetAsideCheckpoint(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("SetAsideCheckpoint = %q, %v; want an error naming %s: %q", aside, err, path, tt.wantErr)
				}
				if info, err := os.Stat(path); err != nil || !info.IsDir() {
					t.Errorf("the folder of a checkpoint's name was moved: %v", err)
				}
				return
			}
			if err != nil || aside != path+tt.want {
				t.Fatalf("SetAsideCheckpoint = %q, %v; want %s", aside, err, path+tt.want)
			}
			if b, err := os.ReadFile(aside); err != nil || string(b) != "damaged" {
				t.Errorf("%s holds %q (%v), want the damaged file", aside, b, err)
			}
			for _, suffix := range tt.taken {
				if b, _ := os.ReadFile(path + suffix); string(b) != "older" {
					t.Errorf("%s was overwritten", path+suffix)
				}
			}
			if files, err := ListCheckpoints(dir); err != nil || len(files) != 0 {
				t.Errorf("the folder lists %v (%v), want no checkpoint", files, err)
			}
		})
	}
	if _, err := SetAsideCheckpoint(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}

// A checkpoint folder that cannot be listed (here a regular file) is that
// error, not "no checkpoint": -resume must not start afresh over it.
func TestLoadNewestCheckpointUnlistableFolder(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, path, bad, err := LoadNewestCheckpoint(context.Background(), notDir)
	if err == nil || ck != nil || path != "" || bad != nil {
		t.Fatalf("LoadNewestCheckpoint(a file) = %v, %q, %v, %v", ck, path, bad, err)
	}
	if errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "list checkpoints: ") || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("error %q; want the listing's, not a missing checkpoint", err)
	}
}

// A cancelled or timed-out search stops at once with the context's error:
// the files are not blamed for it.
func TestLoadNewestCheckpointStopsWhenCancelled(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []TrainState{{Epoch: 1}, {Epoch: 2}} {
		if err := os.WriteFile(CheckpointPath(dir, s), []byte("not read"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"past its deadline", expired, context.DeadlineExceeded},
	} {
		ck, path, bad, err := LoadNewestCheckpoint(c.ctx, dir)
		if !errors.Is(err, c.want) || ck != nil || path != "" || len(bad) != 0 {
			t.Errorf("%s: %v, %q, %v, %v; want %v and no file blamed", c.name, ck, path, bad, err, c.want)
		}
	}
}
