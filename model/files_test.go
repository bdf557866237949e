//go:build unix

package model

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mnist/data/fileio"
)

// saver is one of this package's writers, through a fileio.Writer.
type saver struct {
	name   string // the prefix of its errors
	save   func(w fileio.Writer, path string) error
	loaded func(t *testing.T, path string) error // reads path back
}

func savers(t *testing.T) []saver {
	cfg := shortConfig()
	cfg.Epochs = 1
	tr, b := newTestTrainer(t, cfg, syntheticSet(64, 1))
	if _, err := tr.Fit(context.Background(), Hooks{}); err != nil {
		t.Fatal(err)
	}
	ck := checkpointOf(t, cfg, tr, b)
	p := testParams(t)
	return []saver{
		{"save model", func(w fileio.Writer, path string) error { return saveSafetensors(w, path, p, nil) },
			func(t *testing.T, path string) error {
				_, _, err := LoadSafetensors(context.Background(), path)
				return err
			}},
		{"save checkpoint", func(w fileio.Writer, path string) error { return saveCheckpoint(w, path, ck) },
			func(t *testing.T, path string) error {
				_, err := LoadCheckpoint(context.Background(), path)
				return err
			}},
	}
}

// TestSavesGoThroughFileio makes each step of fileio's atomic write fail
// under SaveSafetensors and SaveCheckpoint: the previous file stays as it
// was (after the rename, when only the folder sync fails, the new one is
// whole), no temporary file is left, and the error is one line naming the
// path.
func TestSavesGoThroughFileio(t *testing.T) {
	faults := []fileio.Fault{
		{Step: fileio.StepCreateTemp},
		{Step: fileio.StepWrite, After: 100}, // the disk fills after 100 bytes
		{Step: fileio.StepSync},
		{Step: fileio.StepClose},
		{Step: fileio.StepRename},
		{Step: fileio.StepSyncDir},
	}
	for _, s := range savers(t) {
		for _, f := range faults {
			t.Run(s.name+"/"+f.Step.String(), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "out.safetensors")
				if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
					t.Fatal(err)
				}
				err := s.save(fileio.Writer{Fault: &f}, path)
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, s.name+": ") || !strings.Contains(msg, path) || strings.Contains(msg, "\n") {
					t.Errorf("error %q is not one line starting %q and naming %s", msg, s.name, path)
				}
				if f.Step == fileio.StepSyncDir {
					if err := s.loaded(t, path); err != nil {
						t.Errorf("after the rename the file should be whole: %v", err)
					}
				} else if got, _ := os.ReadFile(path); string(got) != "previous" {
					t.Errorf("the failed save changed the file to %d bytes", len(got))
				}
				assertDirHolds(t, dir, "out.safetensors")
			})
		}
	}
}

// TestSaveTargets: the savers refuse outputs that are not regular files,
// with fileio's words, and write through a symlink to a regular file.
func TestSaveTargets(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder")
	os.Mkdir(folder, 0o755)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("nowhere", dangling)
	real := filepath.Join(dir, "real")
	os.WriteFile(real, nil, 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink("real", link)
	for _, s := range savers(t) {
		for _, c := range []struct{ path, want string }{
			{fifo, "it is a named pipe (FIFO), not a regular file"},
			{folder, "it is a folder, not a regular file"},
			{"/dev/null", "it is a device, not a regular file"},
			{dangling, "dangling symlink"},
		} {
			err := s.save(fileio.Writer{}, c.path)
			if err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) || !errors.Is(err, fileio.ErrNotRegular) {
				t.Errorf("%s to %s: %v, want an error saying %q", s.name, c.path, err, c.want)
			}
		}
		if err := s.save(fileio.Writer{}, link); err != nil {
			t.Fatalf("%s through a symlink: %v", s.name, err)
		}
		if err := s.loaded(t, real); err != nil {
			t.Errorf("%s through a symlink did not write its target: %v", s.name, err)
		}
		if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s replaced the symlink itself", s.name)
		}
	}
	assertDirHolds(t, dir, "dangling", "fifo", "folder", "link", "real")
}

// TestLoadsRefuseNonRegular: -load and -resume files that are not regular
// files fail at once (a FIFO must not block) with one line naming them.
func TestLoadsRefuseNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, nil, 0o644)
	os.Truncate(big, maxCheckpointSize+1)
	temp := filepath.Join(dir, ".m.safetensors.tmp-1x2")
	os.WriteFile(temp, nil, 0o644)
	for _, s := range savers(t) {
		for _, c := range []struct {
			path string
			want error
		}{
			{fifo, fileio.ErrNotRegular},
			{zero, fileio.ErrNotRegular},
			{dir, fileio.ErrNotRegular},
			{big, fileio.ErrTooLarge},
			{temp, nil},
		} {
			done := make(chan error, 1)
			go func() { done <- s.loaded(t, c.path) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("reading %s still blocked after 10 s", c.path)
			}
			if err == nil || !strings.Contains(err.Error(), c.path) || strings.Contains(err.Error(), "\n") ||
				(c.want != nil && !errors.Is(err, c.want)) {
				t.Errorf("load %s: %v, want one line naming it (%v)", c.path, err, c.want)
			}
		}
	}
}

// TestCheckpointFolderIsLiteral: the folder's name is never a pattern, and
// only names CheckpointPath makes are listed, kept in numeric order, and
// pruned.
func TestCheckpointFolderIsLiteral(t *testing.T) {
	for _, name := range []string{"exp-*", "run[1]", "run[", "a?b"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, name)
			// Folders a glob of dir's name would match instead.
			for _, other := range []string{"exp-a", "run1", "axb", name} {
				os.MkdirAll(filepath.Join(root, other), 0o755)
				os.WriteFile(CheckpointPath(filepath.Join(root, other), TrainState{Epoch: 9}), nil, 0o644)
			}
			os.Remove(CheckpointPath(dir, TrainState{Epoch: 9}))
			for _, s := range []TrainState{{Epoch: 999999}, {Epoch: 1000000}, {Epoch: 2, Step: 5}, {Epoch: 3}} {
				os.WriteFile(CheckpointPath(dir, s), nil, 0o644)
			}
			strangers := []string{
				".checkpoint-e000004-s0000000.safetensors.tmp-abc", // an interrupted save
				"checkpoint-e0000005-s0000000.safetensors",         // not our width
				"checkpoint-e000005-s0000000.safetensors.bak",
				"checkpoint-e5-s0.safetensors",
				"notes.txt",
			}
			for _, n := range strangers {
				os.WriteFile(filepath.Join(dir, n), nil, 0o644)
			}
			files, err := ListCheckpoints(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"checkpoint-e000002-s0000005.safetensors",
				"checkpoint-e000003-s0000000.safetensors",
				"checkpoint-e999999-s0000000.safetensors",
				"checkpoint-e1000000-s0000000.safetensors",
			}
			var got []string
			for _, f := range files {
				if filepath.Dir(f) != dir {
					t.Errorf("listed %s, outside %s", f, dir)
				}
				got = append(got, filepath.Base(f))
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("ListCheckpoints = %q, want %q", got, want)
			}
			if err := PruneCheckpoints(dir, 2); err != nil {
				t.Fatal(err)
			}
			kept := append(slices.Clone(strangers), want[2], want[3])
			slices.Sort(kept)
			assertDirHolds(t, dir, kept...)
			for _, other := range []string{"exp-a", "run1", "axb"} {
				if _, err := os.Stat(CheckpointPath(filepath.Join(root, other), TrainState{Epoch: 9})); err != nil {
					t.Errorf("pruning %s touched %s: %v", name, other, err)
				}
			}
		})
	}
}

// TestPruneLeavesWhatIsNotOurs: an old checkpoint's name on something
// that is not a regular file (a FIFO, a folder) is not removed; pruning
// stops with one line naming it.
func TestPruneLeavesWhatIsNotOurs(t *testing.T) {
	for _, kind := range []string{"fifo", "folder"} {
		dir := t.TempDir()
		old := CheckpointPath(dir, TrainState{Epoch: 1})
		var err error
		if kind == "fifo" {
			err = syscall.Mkfifo(old, 0o644)
		} else {
			err = os.Mkdir(old, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []int{2, 3} {
			os.WriteFile(CheckpointPath(dir, TrainState{Epoch: e}), nil, 0o644)
		}
		err = PruneCheckpoints(dir, 2)
		if err == nil || !strings.Contains(err.Error(), old) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: prune = %v, want one line naming %s", kind, err, old)
		}
		if _, err := os.Lstat(old); err != nil {
			t.Errorf("%s: pruning removed it: %v", kind, err)
		}
	}
}

// TestLockCheckpointDir: a second run on the same folder is refused while
// the first holds it (two locks in one process: flock locks belong to open
// file descriptions).
func TestLockCheckpointDir(t *testing.T) {
	for _, name := range []string{"exp-*", "run[1]", "run["} {
		dir := filepath.Join(t.TempDir(), name)
		os.Mkdir(dir, 0o755)
		first, err := LockCheckpointDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		second, err := LockCheckpointDir(dir)
		if err == nil {
			second.Unlock()
			t.Errorf("%s: a second lock was granted", name)
		} else if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another run") {
			t.Errorf("%s: error %q should name the folder and say another run uses it", name, err)
		}
		first.Unlock()
		files, err := ListCheckpoints(dir)
		if err != nil || len(files) != 0 {
			t.Errorf("the lock file is listed as a checkpoint: %v %v", files, err)
		}
	}
}
