//go:build unix

package fileio

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadFile: what is read, and what is refused, each with one line
// naming the path. Every case runs under a time guard: a FIFO that blocked
// the open or the read would hang the test otherwise.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB: several chunks
	file := filepath.Join(dir, "file")
	os.WriteFile(file, data, 0o644)
	os.Symlink("file", filepath.Join(dir, "link"))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "zero"))
	os.Symlink("fifo", filepath.Join(dir, "fifolink"))
	os.Mkdir(filepath.Join(dir, "folder"), 0o755)
	os.WriteFile(filepath.Join(dir, ".file.tmp-abc"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	// A sparse file of 1 TiB: only a check of the size before reading
	// (and before allocating) refuses it at once.
	if err := os.WriteFile(filepath.Join(dir, "huge"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "huge"), 1<<40); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		max     int64
		want    []byte // content on success
		wantErr error  // else an error wrapping this
		wantMsg string // and saying this
	}{
		{name: "file", max: int64(len(data)), want: data},
		{name: "link", max: int64(len(data)), want: data},
		{name: "empty", max: 10, want: []byte{}},
		{name: "file", max: int64(len(data)) - 1, wantErr: ErrTooLarge, wantMsg: "3000000 bytes, more than the 2999999 allowed"},
		{name: "huge", max: 1 << 20, wantErr: ErrTooLarge, wantMsg: "1099511627776 bytes, more than the 1048576 allowed"},
		{name: "fifo", max: 1 << 20, wantErr: ErrNotRegular, wantMsg: "it is a named pipe (FIFO), not a regular file"},
		{name: "fifolink", max: 1 << 20, wantErr: ErrNotRegular, wantMsg: "it links to fifo, which is a named pipe (FIFO)"},
		{name: "zero", max: 1 << 20, wantErr: ErrNotRegular, wantMsg: "it links to /dev/zero, which is a device, not a regular file"},
		{name: "folder", max: 1 << 20, wantErr: ErrNotRegular, wantMsg: "it is a folder, not a regular file"},
		{name: "missing", max: 1 << 20, wantErr: os.ErrNotExist, wantMsg: "no such file"},
		{name: ".file.tmp-abc", max: 1 << 30, wantMsg: "temporary file"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.wantMsg, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			type result struct {
				b   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := ReadFile(context.Background(), path, tt.max)
				done <- result{b, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadFile(%s) still blocked after 10 s", path)
			}
			if tt.want != nil {
				if r.err != nil || !bytes.Equal(r.b, tt.want) {
					t.Fatalf("read %d bytes, %v; want %d bytes", len(r.b), r.err, len(tt.want))
				}
				return
			}
			checkOneLine(t, r.err, path)
			if r.b != nil {
				t.Errorf("returned %d bytes with the error", len(r.b))
			}
			if tt.wantErr != nil && !errors.Is(r.err, tt.wantErr) {
				t.Errorf("error %q does not wrap %v", r.err, tt.wantErr)
			}
			if !strings.Contains(r.err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", r.err, tt.wantMsg)
			}
		})
	}
}

// cancelAfter is a context that reports itself cancelled from the n-th
// call of Err on: a read checked only before it starts would not notice.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestReadFileCancelled: a cancelled read stops between chunks, before the
// whole file is read, with an error wrapping context.Canceled.
func TestReadFileCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	os.WriteFile(path, make([]byte, 5*readChunk), 0o644)
	for _, n := range []int{0, 1, 3} {
		_, err := ReadFile(&cancelAfter{Context: context.Background(), n: n}, path, 10*readChunk)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d looks: %v, want context.Canceled", n, err)
			continue
		}
		checkOneLine(t, err, path)
	}
}
