package fileio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Step is one step of an atomic write, in the order WriteFile takes them.
type Step int

// The steps of WriteFile, for Fault.
const (
	StepCreateTemp Step = iota + 1 // create the temporary file beside the target
	StepWrite                      // write the content into it
	StepSync                       // fsync it
	StepClose                      // close it
	StepRename                     // rename it over the target
	StepSyncDir                    // fsync the folder, making the rename durable
)

// String says in an error message which step failed.
func (s Step) String() string {
	switch s {
	case StepCreateTemp:
		return "create a temporary file"
	case StepWrite:
		return "write the temporary file"
	case StepSync:
		return "sync the temporary file"
	case StepClose:
		return "close the temporary file"
	case StepRename:
		return "rename the temporary file over it"
	case StepSyncDir:
		return "sync folder"
	}
	return "step " + strconv.Itoa(int(s))
}

// Fault makes one step of a Writer's writes fail, so that tests (of this
// package and of its callers) can check what every failure leaves behind.
type Fault struct {
	Step Step
	// Err is what the step returns; nil means syscall.EIO, or
	// syscall.ENOSPC for StepWrite.
	Err error
	// After, for StepWrite only, is how many bytes are written before the
	// failure: a disk that fills up part-way.
	After int64
}

// Writer writes files atomically. The zero value is what programs use; a
// Writer with a Fault is for tests.
type Writer struct {
	Fault *Fault
}

// WriteFile is Writer{}.WriteFile.
func WriteFile(path string, write func(io.Writer) error) error {
	return Writer{}.WriteFile(path, write)
}

// WriteFile writes what write produces to path, atomically: a reader, or a
// crash, sees either the previous file or the complete new one. The
// content goes to a temporary file in the target's folder (a rename is
// atomic only within one file system), which is synced, closed and renamed
// over the target; then the folder is synced so the rename survives a
// crash. path must be absent, a regular file or a symlink to one (see
// CheckTarget); a symlink's target is replaced and the link kept.
//
// On any failure up to the rename, the temporary file is removed and the
// previous file is untouched. Should syncing the folder fail after the
// rename, the file holds the complete new content but may not survive a
// crash; that is reported too. Errors are one line naming path; an error
// from write is wrapped, so errors.Is sees it.
func (w Writer) WriteFile(path string, write func(io.Writer) error) error {
	real, err := target(path)
	if err != nil {
		return err
	}
	if err := w.steps().write(real, write); err != nil {
		return writeError(path, err)
	}
	return nil
}

// steps is the seam between WriteFile and the file system: one function
// per step, the real ones unless a Fault replaces one. It is built per
// call, never stored in a package variable.
type steps struct {
	createTemp func(target string) (*os.File, error)
	writer     func(f *os.File) io.Writer
	sync       func(f *os.File) error
	close      func(f *os.File) error
	rename     func(from, to string) error
	syncDir    func(dir string) error
}

func osSteps() steps {
	return steps{
		createTemp: createTemp,
		writer:     func(f *os.File) io.Writer { return f },
		sync:       (*os.File).Sync,
		close:      (*os.File).Close,
		rename:     os.Rename,
		syncDir:    SyncDir,
	}
}

// steps are the real steps with w.Fault's step made to fail.
func (w Writer) steps() steps {
	s := osSteps()
	f := w.Fault
	if f == nil {
		return s
	}
	fail := f.Err
	if fail == nil {
		fail = syscall.EIO
		if f.Step == StepWrite {
			fail = syscall.ENOSPC
		}
	}
	switch f.Step {
	case StepCreateTemp:
		s.createTemp = func(string) (*os.File, error) { return nil, fail }
	case StepWrite:
		s.writer = func(file *os.File) io.Writer { return &fullDisk{w: file, left: f.After, err: fail} }
	case StepSync:
		s.sync = func(*os.File) error { return fail }
	case StepClose:
		// The file really is closed, as a failing close(2) does too.
		s.close = func(file *os.File) error { file.Close(); return fail }
	case StepRename:
		s.rename = func(string, string) error { return fail }
	case StepSyncDir:
		s.syncDir = func(dir string) error { return fmt.Errorf("sync folder %s: %w", dir, fail) }
	}
	return s
}

// fullDisk is a disk with left bytes free: it takes that many, then fails.
type fullDisk struct {
	w    io.Writer
	left int64
	err  error
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if int64(len(p)) <= d.left {
		n, err := d.w.Write(p)
		d.left -= int64(n)
		return n, err
	}
	n, err := d.w.Write(p[:d.left])
	d.left -= int64(n)
	if err == nil {
		err = d.err
	}
	return n, err
}

// write is WriteFile's steps in order. Errors say which step failed and
// why, without the temporary file's random name.
func (s steps) write(real string, write func(io.Writer) error) (err error) {
	f, err := s.createTemp(real)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", StepCreateTemp, filepath.Dir(real), unwrapPath(err))
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // may be closed already; the first error is the one to report
			if tmp != "" {
				os.Remove(tmp)
			}
		}
	}()
	if err := write(s.writer(f)); err != nil {
		return fmt.Errorf("%s: %w", StepWrite, unwrapPath(err))
	}
	if err := s.sync(f); err != nil {
		return fmt.Errorf("%s: %w", StepSync, unwrapPath(err))
	}
	if err := s.close(f); err != nil {
		return fmt.Errorf("%s: %w", StepClose, unwrapPath(err))
	}
	if err := s.rename(tmp, real); err != nil {
		return fmt.Errorf("%s: %w", StepRename, unwrapPath(err))
	}
	if err := s.syncDir(filepath.Dir(real)); err != nil {
		// Renamed: the temporary file is the target now, not to be removed.
		tmp = ""
		return fmt.Errorf("the new content is in place but may not survive a crash: %w", err)
	}
	return nil
}

// createTemp makes a new, empty temporary file beside target (see IsTemp)
// with mode 0644 less the umask, as os.WriteFile would give a new file;
// os.CreateTemp would make it 0600, wrong for a model or a plot.
func createTemp(target string) (*os.File, error) {
	dir, base := filepath.Split(target)
	for range 100 {
		name := filepath.Join(dir, "."+base+tempMarker+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("no unused temporary name in %s after 100 tries", dir)
}

// SyncDir flushes a folder's entries to disk, making a rename or a new file
// in it survive a crash. One rule for its errors: EINVAL and ENOTSUP
// (EOPNOTSUPP) are ignored, as they only say that this file system cannot
// sync a folder (some network and FUSE file systems); whatever it holds is
// as durable as it can make it. Every other error, opening the folder
// included, is returned.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, unwrapPath(err))
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EOPNOTSUPP) {
		return fmt.Errorf("sync folder %s: %w", dir, unwrapPath(err))
	}
	return nil
}

// MkdirAllSynced makes dir and any parents it lacks, as os.MkdirAll does
// (perm less the umask), and syncs the folder holding each folder it made,
// so that a new folder survives a crash like a file written into it with
// WriteFile. A dir that exists is left alone. Errors are one line naming
// dir.
func MkdirAllSynced(dir string, perm fs.FileMode) error {
	return mkdirAllSynced(dir, perm, SyncDir)
}

// mkdirAllSynced is MkdirAllSynced with the folder sync given, so that
// tests can see which folders are synced and make a sync fail.
func mkdirAllSynced(dir string, perm fs.FileMode, syncDir func(string) error) error {
	// The folders MkdirAll will make: dir and its missing parents, the
	// deepest first.
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		made = append(made, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("make folder %s: %w", dir, unwrapPath(err))
	}
	for _, d := range made {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return fmt.Errorf("make folder %s: %w", dir, err)
		}
	}
	return nil
}
