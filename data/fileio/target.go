package fileio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNotRegular is wrapped by every error about a path that exists but is
// not a regular file (nor a symlink to one).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by ReadFile's error for a file over the limit.
var ErrTooLarge = errors.New("file too large")

// tempMarker sits between a target's name and the random suffix of its
// temporary files: ".model.safetensors.tmp-k3j9x1".
const tempMarker = ".tmp-"

// IsTemp reports whether name (a base name or a path) is one of the
// temporary files WriteFile makes: a dot, the target's name, ".tmp-" and a
// random suffix of letters and digits. Such a file is what a write killed
// before its rename leaves behind; it is never data.
func IsTemp(name string) bool {
	_, ok := TempTarget(name)
	return ok
}

// TempTarget returns the base name of the file a temporary file of
// WriteFile's was for (".model.safetensors.tmp-k3j9x1": model.safetensors),
// and whether name is one at all (see IsTemp).
func TempTarget(name string) (string, bool) {
	base := filepath.Base(name)
	i := strings.LastIndex(base, tempMarker)
	if !strings.HasPrefix(base, ".") || i < 2 {
		return "", false
	}
	suffix := base[i+len(tempMarker):]
	if suffix == "" {
		return "", false
	}
	for _, c := range suffix {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return "", false
		}
	}
	return base[1:i], true
}

// kind names a file type for an error message: "a folder", "a device"...
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	default:
		return "a special file"
	}
}

// notRegular is the one wording of "this path is not a file we can use",
// to follow the path in readError or writeError. link is the symlink's
// target when the path is a symlink, else "".
func notRegular(link string, m fs.FileMode) error {
	if link != "" {
		return fmt.Errorf("it links to %s, which is %s, %w", link, kind(m), ErrNotRegular)
	}
	return fmt.Errorf("it is %s, %w", kind(m), ErrNotRegular)
}

// writeError is the one form of every error about an output: it names the
// path the caller gave.
func writeError(path string, err error) error {
	return fmt.Errorf("cannot write %s: %w", path, err)
}

// target is where a write of path really goes: path itself, or the regular
// file a symlink at path points to. Everything that is not absent, a
// regular file or a symlink to one is refused with one line naming path.
// The folder that will hold the file must exist.
func target(path string) (string, error) {
	if path == "" {
		return "", errors.New("cannot write to an empty file name")
	}
	if IsTemp(path) {
		return "", writeError(path, errors.New("the name is that of a temporary file (.NAME.tmp-XXXX), which is never data"))
	}
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// A new file: its folder must exist and be a folder.
		return path, checkFolder(path, filepath.Dir(path))
	case err != nil:
		return "", writeError(path, unwrapPath(err))
	case info.Mode().IsRegular():
		return path, nil
	case info.Mode()&fs.ModeSymlink == 0:
		return "", writeError(path, notRegular("", info.Mode()))
	}
	// A symlink: write through it to the regular file it names.
	link, _ := os.Readlink(path) // for the messages only
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", writeError(path, fmt.Errorf("it is a dangling symlink (to %s), %w", link, ErrNotRegular))
	}
	info, err = os.Stat(resolved)
	if err != nil {
		return "", writeError(path, unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		return "", writeError(path, notRegular(link, info.Mode()))
	}
	return resolved, nil
}

// checkFolder makes sure the folder that will hold path exists and is one.
func checkFolder(path, dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return writeError(path, fmt.Errorf("folder %s does not exist", dir))
	case err != nil:
		return writeError(path, unwrapPath(err))
	case !info.IsDir():
		return writeError(path, fmt.Errorf("%s is not a folder", dir))
	}
	return nil
}

// CheckTarget checks, before anything is computed, that WriteFile(path)
// can succeed as far as can be known now: path is absent, a regular file or
// a symlink to one, and its folder exists and accepts new files (a
// temporary file is made there and removed). The error is one line naming
// path.
func CheckTarget(path string) error {
	real, err := target(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(real)
	if err := checkFolder(path, dir); err != nil {
		return err
	}
	f, err := createTemp(real)
	if err != nil {
		return writeError(path, fmt.Errorf("cannot create files in folder %s: %w", dir, unwrapPath(err)))
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return writeError(path, fmt.Errorf("cannot remove the test file %s: %w", name, unwrapPath(err)))
	}
	return nil
}

// SamePath reports whether a and b name the same file: the same cleaned
// absolute path once symlinks are resolved (as far as they exist), or, when
// both exist, the same file by device and inode (hard links).
func SamePath(a, b string) bool {
	if resolvePath(a) == resolvePath(b) {
		return true
	}
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}

// resolvePath is p absolute and cleaned, with symlinks resolved in p, or
// in its folder when p itself does not exist yet.
func resolvePath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(r, filepath.Base(abs))
	}
	return abs
}

// unwrapPath drops the *fs.PathError layer, whose text repeats a path the
// message already names (or names a random temporary file), and keeps the
// reason, which errors.Is still sees.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
