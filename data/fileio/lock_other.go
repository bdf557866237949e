//go:build !unix

package fileio

// Lock is a no-op where flock(2) does not exist: two runs on one folder
// are not detected there.
type Lock struct{}

// LockFile does nothing on this system.
func LockFile(path string) (*Lock, error) { return &Lock{}, nil }

// Unlock does nothing on this system.
func (l *Lock) Unlock() error { return nil }
