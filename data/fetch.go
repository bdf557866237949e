package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"mnist/data/fileio"
)

// Fetcher defaults and bounds.
const (
	// defaultTimeout bounds one attempt at one file from one source, the
	// whole transfer included: the module proxy's 11.6 MB must fit on a slow
	// link (it does at 20 KB/s). Unreachable mirrors fail much sooner through
	// the HTTP client's own timeouts, and a transfer that stops through
	// defaultStall.
	defaultTimeout = 10 * time.Minute
	// defaultStall is how long a download's body may send nothing before
	// the attempt is given up (and retried, as a transient failure).
	defaultStall     = time.Minute
	defaultRetryWait = time.Second
	maxRetries       = 5
)

// errStalled is the cause of an attempt given up because its body sent
// nothing for the stall time.
var errStalled = errors.New("stalled")

// Fetcher puts the MNIST files into a folder, fetching the missing ones.
type Fetcher struct {
	Sources   []Source
	Timeout   time.Duration      // per attempt, per source (10 minutes if zero)
	Stall     time.Duration      // per attempt: longest wait for a body's next byte (1 minute if zero)
	Retries   int                // extra attempts per source for transient failures (at most 5)
	RetryWait time.Duration      // pause before the first retry, doubled after each (1s if zero)
	Log       logrus.FieldLogger // nil: no logging

	// files writes the downloads; tests set a Fault in it.
	files fileio.Writer
	// readFile reads a present file (nil: fileio.ReadFile); a test swaps
	// the file on disk behind it, to show the sets are parsed from the
	// bytes that were verified, not from a second read.
	readFile func(ctx context.Context, path string, maxSize int64) ([]byte, error)
}

// Ensure makes sure dir holds the four files with their canonical size and
// SHA-256. Present files that match are left alone and nothing touches the
// network. Missing files are fetched from the sources in order; each
// download is verified in memory, then written with fileio.WriteFile
// (atomically, as a temporary file renamed into place). A present file that
// differs is an error naming it: user files are never overwritten or
// deleted. When all sources fail for a file, the error lists each source
// and why it failed.
func (f *Fetcher) Ensure(ctx context.Context, dir string) error {
	_, err := f.ensure(ctx, dir, Files())
	return err
}

// ensure is Ensure for any file list, so tests can serve small fake files.
// It returns each file's verified content, in the order of files: each
// present file is read once, each missing one downloaded once.
func (f *Fetcher) ensure(ctx context.Context, dir string, files []File) ([][]byte, error) {
	log := f.Log
	if log == nil {
		quiet := logrus.New()
		quiet.SetOutput(io.Discard)
		log = quiet
	}
	// Check every present file before downloading anything, so a bad file
	// is reported at once rather than after minutes of downloads.
	contents := make([][]byte, len(files))
	var missing []int
	for i, file := range files {
		b, err := f.readVerified(ctx, filepath.Join(dir, file.Name), file)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, i)
			continue
		}
		if err != nil {
			return nil, err
		}
		log.WithField("file", file.Name).Debug("present and verified")
		contents[i] = b
	}
	if len(missing) == 0 {
		return contents, nil
	}
	if len(f.Sources) == 0 {
		return nil, fmt.Errorf("%s is missing %s and no sources are configured to fetch it", dir, files[missing[0]].Name)
	}
	if err := fileio.MkdirAllSynced(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	// A folder that cannot take the downloads is refused before the first
	// one, not after it: on a slow link that is minutes saved.
	if err := fileio.CheckTarget(filepath.Join(dir, files[missing[0]].Name)); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	// A source that failed for one file is not asked again for the next
	// ones: an unreachable mirror then costs its timeout once, not 4 times.
	// Indexed by position because a Source need not be comparable.
	failedBefore := make([]error, len(f.Sources))
	for _, i := range missing {
		b, err := f.fetchFile(ctx, dir, files[i], failedBefore, log)
		if err != nil {
			return nil, err
		}
		contents[i] = b
	}
	return contents, nil
}

// readVerified reads path once and checks it is file: its size first
// (before reading, for a larger one), then its SHA-256. A missing file is
// an error wrapping fs.ErrNotExist; one that differs is an error naming it
// (someone put it there, so it is not touched).
func (f *Fetcher) readVerified(ctx context.Context, path string, file File) ([]byte, error) {
	const notOriginal = "it is not the original file; delete it and run again to download it"
	read := f.readFile
	if read == nil {
		read = fileio.ReadFile
	}
	b, err := read(ctx, path, file.Size)
	if errors.Is(err, fileio.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %s is larger than the original's %d bytes: %s", ErrFileSize, path, file.Size, notOriginal)
	}
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != file.Size {
		return nil, fmt.Errorf("%w: %s is %d bytes, the original %d: %s", ErrFileSize, path, len(b), file.Size, notOriginal)
	}
	if sum := sha256Hex(b); sum != file.SHA256 {
		return nil, fmt.Errorf("%w: %s has SHA-256 %s, want %s: %s", ErrDigest, path, sum, file.SHA256, notOriginal)
	}
	return b, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fetchFile tries the sources in order until one delivers a verified copy,
// writes it into dir and returns it.
func (f *Fetcher) fetchFile(ctx context.Context, dir string, file File, failedBefore []error, log logrus.FieldLogger) ([]byte, error) {
	all := &fetchError{file: file.Name, dir: dir}
	for i, src := range f.Sources {
		if failedBefore[i] != nil {
			all.failures = append(all.failures, &sourceError{src.Name(), fmt.Errorf("skipped, it failed for an earlier file: %w", failedBefore[i])})
			continue
		}
		l := log.WithFields(logrus.Fields{"file": file.Name, "source": src.Name()})
		l.Info("downloading")
		b, err := f.fetchWithRetries(ctx, file, src, l)
		if err == nil {
			// A local failure (a full disk) is not the source's fault:
			// it ends the fetch rather than trying the next source.
			path := filepath.Join(dir, file.Name)
			if err := f.files.WriteFile(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
				return nil, fmt.Errorf("save the download: %w", err)
			}
			l.Info("downloaded and verified")
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch %s: %w", file.Name, ctx.Err())
		}
		l.WithError(err).Warn("source failed, trying the next one")
		failedBefore[i] = err
		all.failures = append(all.failures, &sourceError{src.Name(), err})
	}
	return nil, all
}

// fetchWithRetries repeats transient failures (5xx, timeouts, cut-off
// bodies) a bounded number of times; other failures return at once.
func (f *Fetcher) fetchWithRetries(ctx context.Context, file File, src Source, log logrus.FieldLogger) ([]byte, error) {
	retries := min(max(f.Retries, 0), maxRetries)
	wait := f.RetryWait
	if wait <= 0 {
		wait = defaultRetryWait
	}
	for attempt := 1; ; attempt++ {
		b, err := f.fetchOnce(ctx, file, src)
		if err == nil || ctx.Err() != nil {
			return b, err
		}
		if attempt > retries || !isTransient(err) {
			if attempt > 1 {
				return nil, fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return nil, err
		}
		log.WithError(err).WithField("attempt", attempt).Warn("transient failure, retrying")
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		wait *= 2
	}
}

// fetchOnce downloads file from src into memory (at most its size and one
// byte more) and returns it once its size and digest are verified. Nothing
// touches the folder until then. The attempt is given up after f.Timeout
// in all, or once the body has sent nothing for f.Stall.
func (f *Fetcher) fetchOnce(ctx context.Context, file File, src Source) ([]byte, error) {
	timeout, stall := f.Timeout, f.Stall
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if stall <= 0 {
		stall = defaultStall
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	body, err := src.Open(ctx, file.Name)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return nil, err
	}
	defer body.Close()
	watched := &stallReader{r: body, stall: stall, timer: time.AfterFunc(stall, func() { cancel(errStalled) })}
	defer watched.timer.Stop()

	var buf bytes.Buffer
	buf.Grow(int(file.Size) + 1)
	n, err := io.Copy(&buf, io.LimitReader(watched, file.Size+1)) // a larger body is wrong anyway
	if err != nil {
		switch {
		case errors.Is(context.Cause(ctx), errStalled):
			return nil, fmt.Errorf("%w: nothing received for %s after %d bytes", errStalled, stall, n)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, fmt.Errorf("timed out after %s with %d bytes received (a slow link: %.0f KB/s): %w", timeout, n, float64(n)/1e3/timeout.Seconds(), err)
		}
		return nil, fmt.Errorf("download cut off after %d bytes: %w", n, err)
	}
	switch {
	case n > file.Size:
		return nil, fmt.Errorf("%w: download is larger than the expected %d bytes", ErrFileSize, file.Size)
	case n < file.Size:
		return nil, fmt.Errorf("%w: download is %d bytes, want %d", ErrFileSize, n, file.Size)
	}
	if sum := sha256Hex(buf.Bytes()); sum != file.SHA256 {
		return nil, fmt.Errorf("%w: got %s (%d bytes), want %s", ErrDigest, sum, n, file.SHA256)
	}
	return buf.Bytes(), nil
}

// stallReader reads r, restarting timer (which gives the attempt up) at
// each read that brings bytes: it fires only after stall without any.
type stallReader struct {
	r     io.Reader
	stall time.Duration
	timer *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.stall)
	}
	return n, err
}
