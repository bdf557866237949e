//go:build linux

package fileio

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Edges of reading and locking found by the mutation pass
// (scripts/mutate): changes the other tests let pass.

// openFiles counts this process's open descriptors (Linux's /proc/self/fd).
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// noLeak fails t if calling f leaves descriptors open. f runs several
// times, so that one descriptor the runtime opens meanwhile is not taken
// for a leak.
func noLeak(t *testing.T, name string, f func()) {
	t.Helper()
	before := openFiles(t)
	for range 8 {
		f()
	}
	if after := openFiles(t); after >= before+8 {
		t.Errorf("%s: %d descriptors open, %d before", name, after, before)
	}
}

// Every way ReadFile and LockFile refuse a file closes what they opened.
func TestRefusalsCloseTheirFiles(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := LockFile(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"read a folder", func() error { _, err := ReadFile(ctx, dir, 10); return err }},
		{"read a FIFO", func() error { _, err := ReadFile(ctx, fifo, 10); return err }},
		{"read a file too large", func() error { _, err := ReadFile(ctx, big, 10); return err }},
		{"read a file", func() error { _, err := ReadFile(ctx, big, 1000); return err }},
		{"lock a folder", func() error { _, err := LockFile(dir); return err }},
		{"lock a FIFO", func() error { _, err := LockFile(fifo); return err }},
		{"lock a held lock", func() error { _, err := LockFile(filepath.Join(dir, "lock")); return err }},
	} {
		noLeak(t, c.name, func() {
			if err := c.f(); (err == nil) != (c.name == "read a file") {
				t.Fatalf("%s: %v", c.name, err)
			}
		})
	}
}

// A file that holds more than its size says (Linux's /proc files say 0)
// is still held to the limit while it is read, and read whole within it.
func TestReadFileGrowsPastItsSize(t *testing.T) {
	const path = "/proc/self/status" // a regular file of size 0 and about 1 KB
	info, err := os.Stat(path)
	if err != nil || info.Size() != 0 || !info.Mode().IsRegular() {
		t.Skipf("no /proc/self/status of size 0: %v", err)
	}
	b, err := ReadFile(context.Background(), path, 1<<20)
	if err != nil || !strings.HasPrefix(string(b), "Name:") || !strings.Contains(string(b), "\nPid:") {
		t.Fatalf("ReadFile(%s) = %d bytes, %v", path, len(b), err)
	}
	b, err = ReadFile(context.Background(), path, 16)
	if err == nil || b != nil || !strings.Contains(err.Error(), "file too large") {
		t.Errorf("ReadFile(%s, limit 16) = %d bytes, %v; want refused as too large", path, len(b), err)
	}
}

// A cancelled read fails with the context's error before it looks at the
// file, whatever is wrong with the file.
func TestReadFileCancelledFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, path := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		if _, err := ReadFile(ctx, path, 10); !errors.Is(err, context.Canceled) || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(cancelled, %s) = %v, want the cancellation", path, err)
		}
	}
}

// LockFile where no file can be made says why; Unlock is safe on a nil
// Lock and a second time.
func TestLockFileEdges(t *testing.T) {
	_, err := LockFile(filepath.Join(t.TempDir(), "no", "such", "lock"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "cannot lock ") {
		t.Errorf("LockFile in a missing folder = %v, want not exist", err)
	}
	var none *Lock
	if err := none.Unlock(); err != nil {
		t.Errorf("nil Lock: Unlock = %v", err)
	}
	l, err := LockFile(filepath.Join(t.TempDir(), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock = %v", err)
	}
	if err := (&Lock{}).Unlock(); err != nil {
		t.Errorf("zero Lock: Unlock = %v", err)
	}
}

// A file whose size says 0 (Linux's /proc files) but that holds a few
// bytes more than the limit is refused however the limit falls against
// the growing buffer, and read whole at exactly its length.
func TestReadFileLimitAtTheEnd(t *testing.T) {
	const path = "/proc/self/cmdline"
	want, err := os.ReadFile(path)
	if err != nil || len(want) < 8 {
		t.Skipf("no %s: %v", path, err)
	}
	n := int64(len(want))
	if b, err := ReadFile(context.Background(), path, n); err != nil || string(b) != string(want) {
		t.Fatalf("ReadFile(%s, limit %d) = %q, %v", path, n, b, err)
	}
	for limit := n - 1; limit >= n-8; limit-- {
		if b, err := ReadFile(context.Background(), path, limit); !errors.Is(err, ErrTooLarge) || b != nil {
			t.Errorf("ReadFile(%s of %d bytes, limit %d) = %d bytes, %v", path, n, limit, len(b), err)
		}
	}
}

// A read that fails (Linux's /proc/self/mem at address 0: EIO) is that
// error, not a loop and not a short file.
func TestReadFileReadError(t *testing.T) {
	const path = "/proc/self/mem"
	if info, err := os.Stat(path); err != nil || !info.Mode().IsRegular() {
		t.Skipf("no %s", path)
	}
	b, err := ReadFile(context.Background(), path, 1<<20)
	if !errors.Is(err, syscall.EIO) || b != nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile(%s) = %d bytes, %v; want EIO", path, len(b), err)
	}
}

func TestKind(t *testing.T) {
	for _, c := range []struct {
		m    fs.FileMode
		want string
	}{
		{fs.ModeDir | 0o755, "a folder"},
		{fs.ModeNamedPipe, "a named pipe (FIFO)"},
		{fs.ModeSocket, "a socket"},
		{fs.ModeDevice, "a device"},
		{fs.ModeDevice | fs.ModeCharDevice, "a device"},
		{fs.ModeSymlink, "a symlink"},
		{fs.ModeIrregular, "a special file"},
	} {
		if got := kind(c.m); got != c.want {
			t.Errorf("kind(%v) = %q, want %q", c.m, got, c.want)
		}
	}
}

// Writes, failed at any step or not, and the checks before them leave no
// descriptor open.
func TestWritesCloseTheirFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	for _, f := range []*Fault{nil, {Step: StepWrite}, {Step: StepWrite, After: 3}, {Step: StepSync}, {Step: StepClose}, {Step: StepRename}, {Step: StepSyncDir}} {
		name := "no fault"
		if f != nil {
			name = f.Step.String()
		}
		noLeak(t, "write, "+name, func() {
			if err := (Writer{Fault: f}).WriteFile(path, content); (err == nil) != (f == nil) {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
	noLeak(t, "SyncDir", func() {
		if err := SyncDir(dir); err != nil {
			t.Fatal(err)
		}
	})
	noLeak(t, "CheckTarget", func() {
		if err := CheckTarget(path); err != nil {
			t.Fatal(err)
		}
	})
}

// A folder in which nothing can be created (Linux's /proc, even for root)
// is reported as such by CheckTarget.
func TestCheckTargetUncreatable(t *testing.T) {
	if info, err := os.Stat("/proc/self"); err != nil || !info.IsDir() {
		t.Skip("no /proc")
	}
	err := CheckTarget("/proc/m.safetensors")
	if err == nil || !strings.Contains(err.Error(), "cannot create files in folder /proc") {
		t.Errorf("CheckTarget(/proc/m.safetensors) = %v, want cannot create files", err)
	}
}

// Two paths of which only one exists are not the same file.
func TestSamePathOneMissing(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	if err := os.WriteFile(a, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "b")
	if SamePath(a, b) || SamePath(b, a) {
		t.Errorf("SamePath(%s, %s) with only the first there: true", a, b)
	}
}

// Two files that both exist but are different files are not the same.
func TestSamePathTwoFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("same content"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if SamePath(a, b) {
		t.Errorf("SamePath of two files = true")
	}
}

// An empty name is refused as such by the check and by the write.
func TestEmptyPath(t *testing.T) {
	const want = "cannot write to an empty file name"
	if err := CheckTarget(""); err == nil || err.Error() != want {
		t.Errorf("CheckTarget(\"\") = %v", err)
	}
	if err := (Writer{}).WriteFile("", content); err == nil || err.Error() != want {
		t.Errorf("WriteFile(\"\") = %v", err)
	}
}
