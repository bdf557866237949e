//go:build unix

package data

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mnist/data/fileio"
)

// withTimeout runs f and fails the test if it has not returned within 10 s:
// a FIFO that blocked a read would otherwise hang the whole run.
func withTimeout(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("still blocked after 10 s")
		return nil
	}
}

// TestLoadRefusesHostileDataFiles puts things that are not the data file
// in its place: each fails at once (no read of /dev/zero or of a terabyte,
// no wait on a FIFO) with one line naming the file.
func TestLoadRefusesHostileDataFiles(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr error
		wantMsg string
	}{
		{"symlink to /dev/zero", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, fileio.ErrNotRegular, "links to /dev/zero, which is a device, not a regular file"},
		{"FIFO", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, fileio.ErrNotRegular, "it is a named pipe (FIFO), not a regular file"},
		{"folder", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, fileio.ErrNotRegular, "it is a folder, not a regular file"},
		// Hashing a terabyte would take an hour: the size is checked first.
		{"sparse terabyte", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 1<<40); err != nil {
				t.Fatal(err)
			}
		}, ErrFileSize, "larger than the original's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := fakeSet(t, dir, 3, 2)
			path := filepath.Join(dir, TestImagesFile)
			os.Remove(path)
			tt.setup(t, path)
			src := &openCounter{}
			err := withTimeout(t, func() error {
				_, _, err := (&Fetcher{Sources: []Source{src}}).load(context.Background(), dir, files)
				return err
			})
			checkErr(t, err, tt.wantErr, path)
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if src.calls.Load() != 0 {
				t.Errorf("downloaded %d files over the user's", src.calls.Load())
			}
		})
	}
}

// TestDownloadsGoThroughFileio makes each step of the atomic write of a
// download fail: the error is one line naming the file (not blamed on the
// source), and the folder holds neither the file nor a temporary one;
// when only the folder sync fails, the verified file is in place.
func TestDownloadsGoThroughFileio(t *testing.T) {
	ff := newFakeFiles(1000)
	for _, step := range []fileio.Step{fileio.StepCreateTemp, fileio.StepWrite, fileio.StepSync, fileio.StepClose, fileio.StepRename, fileio.StepSyncDir} {
		t.Run(step.String(), func(t *testing.T) {
			dir := t.TempDir()
			fe := testFetcher(&openCounter{ff: ff})
			fe.files = fileio.Writer{Fault: &fileio.Fault{Step: step, After: 100}}
			err := fe.ensureErr(context.Background(), dir, ff.specs)
			path := filepath.Join(dir, "a.gz")
			checkErr(t, err, nil, path)
			if !strings.Contains(err.Error(), step.String()) || strings.Contains(err.Error(), "every source failed") {
				t.Errorf("error %q should say %q failed, and not blame the source", err, step)
			}
			if step == fileio.StepSyncDir {
				checkDir(t, dir, ff, "a.gz")
			} else {
				checkDir(t, dir, ff)
			}
		})
	}
}

// TestLoadSetRefusesFIFO: LoadSet, for any two files, refuses a FIFO at
// once too.
func TestLoadSetRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	img := writeFile(t, dir, "i", images(1, 28, 28, 0))
	fifo := filepath.Join(dir, "l")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	err := withTimeout(t, func() error {
		_, err := LoadSet(context.Background(), img, fifo)
		return err
	})
	checkErr(t, err, fileio.ErrNotRegular, fifo)
}

// A data folder that cannot take new files is refused before anything is
// downloaded. /proc/self is such a folder even for root, whom file modes
// do not stop.
func TestEnsureUnwritableFolderBeforeDownload(t *testing.T) {
	if info, err := os.Stat("/proc/self"); err != nil || !info.IsDir() {
		t.Skip("no /proc/self here")
	}
	ff := newFakeFiles(10)
	src := &openCounter{ff: ff}
	_, err := testFetcher(src).ensure(context.Background(), "/proc/self", ff.specs)
	if err == nil || !strings.HasPrefix(err.Error(), "data folder: cannot write /proc/self/a.gz: ") {
		t.Errorf("error %v, want the folder refused", err)
	}
	if n := src.calls.Load(); n != 0 {
		t.Errorf("%d downloads before the folder was refused", n)
	}
}
