//go:build unix

package fileio

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLockFile: a second lock on the same file is refused while the first
// is held, in this one process (flock locks belong to open file
// descriptions), whatever the folder's name; released, it can be taken
// again.
func TestLockFile(t *testing.T) {
	for _, name := range []string{"plain", "exp-*", "run[1]", "run[", "a b"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			os.Mkdir(dir, 0o755)
			path := filepath.Join(dir, ".lock")
			first, err := LockFile(path)
			if err != nil {
				t.Fatal(err)
			}
			second, err := LockFile(path)
			if err == nil {
				second.Unlock()
				t.Fatal("a second lock was granted while the first is held")
			}
			checkOneLine(t, err, path)
			if !strings.Contains(err.Error(), "another run") {
				t.Errorf("error %q does not say another run holds it", err)
			}
			if err := first.Unlock(); err != nil {
				t.Fatal(err)
			}
			again, err := LockFile(path)
			if err != nil {
				t.Fatalf("lock after unlock: %v", err)
			}
			again.Unlock()
		})
	}
}

func TestLockFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/null", filepath.Join(dir, "link"))
	for _, p := range []string{fifo, filepath.Join(dir, "link"), dir} {
		l, err := LockFile(p)
		if err == nil {
			l.Unlock()
			t.Errorf("LockFile(%s) succeeded", p)
			continue
		}
		checkOneLine(t, err, p)
	}
}
