//go:build unix

package fileio

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Lock is an exclusive lock on a folder, held by one open lock file.
type Lock struct {
	f *os.File
}

// LockFile takes an exclusive flock(2) on the file at path, creating it if
// needed, without waiting: when another process (or another Lock in this
// one: flock locks belong to an open file description) holds it, the error
// says the file is in use. The lock is released by Unlock or when the
// process ends, however it ends, so a killed run never leaves a stale lock.
// The file itself stays (removing it would let two runs lock two different
// files of the same name); it must be a regular file.
func LockFile(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot lock %s: %w", path, unwrapPath(err))
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock %s: %w", path, unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("cannot lock %s: %w", path, notRegular("", info.Mode()))
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is locked: another run is using this folder", path)
		}
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. It is safe on a nil Lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
