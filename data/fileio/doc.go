// Package fileio is the program's one home for touching files by path:
// reading a whole input file, checking and atomically writing an output
// file, making and syncing a folder, recognising the temporary files of a
// write and locking a folder for one run. Every other package goes through it, so
// that each rule below holds everywhere and each mistake is reported in
// the same words wherever it is made.
//
// Inputs (ReadFile) must be regular files, or symlinks to one. They are
// opened with O_NONBLOCK, so that a FIFO in their place cannot block the
// open, and checked on the open descriptor, so that what is checked is what
// is read. The size is checked against the caller's limit before any byte
// is read, and the read stops when the context is cancelled.
//
// Outputs (CheckTarget, WriteFile) must be absent, a regular file, or a
// symlink to a regular file; a symlink is written through: its target is
// replaced, atomically, and the link stays. Anything else (a folder, a
// device such as /dev/null, a FIFO, a dangling symlink) is refused, since
// an atomic rename over it would replace the folder entry rather than write
// to it.
//
// A write goes to a temporary file named ".NAME.tmp-RANDOM" beside the
// target, is synced, closed and renamed over the target, and the folder is
// synced so that the rename survives a crash. A folder made for outputs
// (MkdirAllSynced) is synced into its parent for the same reason. A temporary file left by a
// killed process is never taken for data: ReadFile refuses such names, and
// no listing of ours matches them (see IsTemp).
//
// The package is written by hand rather than taken from a library such as
// github.com/google/renameio so that tests can make each step of a write
// fail (see Writer and Fault), including a disk that fills after N bytes.
// renameio offers no such seam.
package fileio
