package fileio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// readChunk is how much ReadFile reads between two looks at the context:
// small enough to stop within milliseconds, large enough to cost nothing.
const readChunk = 1 << 20

// readError is the one form of every error about an input: it names the
// path the caller gave.
func readError(path string, err error) error {
	return fmt.Errorf("cannot read %s: %w", path, err)
}

// ReadFile returns the whole content of the file at path, which must be a
// regular file or a symlink to one, of at most maxSize bytes.
//
// The file is opened with O_NONBLOCK, so a FIFO (or a device) in its place
// cannot block the open, and the checks are made on the open descriptor,
// so the file checked is the file read. Its size is checked before any
// byte is read, and again while reading, in case it grows. The read stops
// soon after ctx is cancelled, with an error wrapping ctx.Err(). The name
// of a temporary file (see IsTemp) is refused: it is what an interrupted
// write left behind, never data. Errors are one line naming path.
func ReadFile(ctx context.Context, path string, maxSize int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, readError(path, err)
	}
	if IsTemp(path) {
		return nil, readError(path, errors.New("it is a temporary file (.NAME.tmp-XXXX) left by an interrupted write, not data"))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, readError(path, unwrapPath(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, readError(path, unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		link := ""
		if l, err := os.Lstat(path); err == nil && l.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(path)
		}
		return nil, readError(path, notRegular(link, info.Mode()))
	}
	if info.Size() > maxSize {
		return nil, readError(path, tooLarge(info.Size(), maxSize))
	}
	// One allocation for the size the file has now, and a byte to find
	// the end in; the limit still holds if it grows while it is read.
	b := make([]byte, 0, info.Size()+1)
	for {
		if err := ctx.Err(); err != nil {
			return nil, readError(path, err)
		}
		if len(b) == cap(b) {
			if int64(len(b)) > maxSize {
				return nil, readError(path, tooLarge(int64(len(b)), maxSize))
			}
			b = append(b, 0)[:len(b)] // room to read on, or to find the end
		}
		room := b[len(b):min(cap(b), len(b)+readChunk)]
		n, err := f.Read(room)
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readError(path, unwrapPath(err))
		}
	}
	if int64(len(b)) > maxSize {
		return nil, readError(path, tooLarge(int64(len(b)), maxSize))
	}
	return b, nil
}

func tooLarge(size, maxSize int64) error {
	return fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrTooLarge, size, maxSize)
}
