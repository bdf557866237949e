package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
)

// Fetcher defaults and bounds.
const (
	// defaultTimeout bounds one attempt at one file from one source, the
	// whole transfer included: 10 MB must fit on a slow link. Unreachable
	// mirrors fail much sooner through the HTTP client's own timeouts.
	defaultTimeout   = 2 * time.Minute
	defaultRetryWait = time.Second
	maxRetries       = 5
)

// Fetcher puts the MNIST files into a folder, fetching the missing ones.
type Fetcher struct {
	Sources   []Source
	Timeout   time.Duration      // per attempt, per source (2 minutes if zero)
	Retries   int                // extra attempts per source for transient failures (at most 5)
	RetryWait time.Duration      // pause before the first retry, doubled after each (1s if zero)
	Log       logrus.FieldLogger // nil: no logging
}

// Ensure makes sure dir holds the four files with their canonical SHA-256.
// Present files that match are left alone and nothing touches the network.
// Missing files are fetched from the sources in order; each download goes to
// a temp file in dir, is verified against the digest, fsynced and renamed.
// A present file with a wrong digest is an error naming it: user files are
// never overwritten or deleted. When all sources fail for a file, the error
// lists each source and why it failed.
func (f *Fetcher) Ensure(ctx context.Context, dir string) error {
	return f.ensure(ctx, dir, Files())
}

// ensure is Ensure for any file list, so tests can serve small fake files.
func (f *Fetcher) ensure(ctx context.Context, dir string, files []File) error {
	log := f.Log
	if log == nil {
		quiet := logrus.New()
		quiet.SetOutput(io.Discard)
		log = quiet
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	// Check every present file before downloading anything, so a bad file
	// is reported at once rather than after minutes of downloads.
	var missing []File
	for _, file := range files {
		present, err := checkPresent(filepath.Join(dir, file.Name), file)
		if err != nil {
			return err
		}
		if present {
			log.WithField("file", file.Name).Debug("present and verified")
			continue
		}
		missing = append(missing, file)
	}
	if len(missing) == 0 {
		return nil
	}
	if len(f.Sources) == 0 {
		return fmt.Errorf("%s is missing %s and no sources are configured to fetch it", dir, missing[0].Name)
	}
	// A source that failed for one file is not asked again for the next
	// ones: an unreachable mirror then costs its timeout once, not 4 times.
	// Indexed by position because a Source need not be comparable.
	failedBefore := make([]error, len(f.Sources))
	for _, file := range missing {
		if err := f.fetchFile(ctx, dir, file, failedBefore, log); err != nil {
			return err
		}
	}
	return nil
}

// checkPresent reports whether path holds the file; a present file with
// other content is an error (someone put it there, so do not touch it).
func checkPresent(path string, file File) (bool, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", path, err)
	}
	if info.IsDir() {
		return false, fmt.Errorf("%s is a directory, but should be the file %s: move it away and run again", path, file.Name)
	}
	sum, err := hashFile(path)
	if err != nil {
		return false, err
	}
	if sum != file.SHA256 {
		return false, fmt.Errorf("%w: %s has SHA-256 %s, want %s: it is not the original file; delete it and run again to download it", ErrDigest, path, sum, file.SHA256)
	}
	return true, nil
}

func hashFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("check %w", err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("check %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fetchFile tries the sources in order until one delivers a verified copy.
func (f *Fetcher) fetchFile(ctx context.Context, dir string, file File, failedBefore []error, log logrus.FieldLogger) error {
	all := &fetchError{file: file.Name, dir: dir}
	for i, src := range f.Sources {
		if failedBefore[i] != nil {
			all.failures = append(all.failures, &sourceError{src.Name(), fmt.Errorf("skipped, it failed for an earlier file: %w", failedBefore[i])})
			continue
		}
		l := log.WithFields(logrus.Fields{"file": file.Name, "source": src.Name()})
		l.Info("downloading")
		err := f.fetchWithRetries(ctx, dir, file, src, l)
		if err == nil {
			l.Info("downloaded and verified")
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fetch %s: %w", file.Name, ctx.Err())
		}
		l.WithError(err).Warn("source failed, trying the next one")
		failedBefore[i] = err
		all.failures = append(all.failures, &sourceError{src.Name(), err})
	}
	return all
}

// fetchWithRetries repeats transient failures (5xx, timeouts, cut-off
// bodies) a bounded number of times; other failures return at once.
func (f *Fetcher) fetchWithRetries(ctx context.Context, dir string, file File, src Source, log logrus.FieldLogger) error {
	retries := min(max(f.Retries, 0), maxRetries)
	wait := f.RetryWait
	if wait <= 0 {
		wait = defaultRetryWait
	}
	for attempt := 1; ; attempt++ {
		err := f.fetchOnce(ctx, dir, file, src)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if attempt > retries || !isTransient(err) {
			if attempt > 1 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return err
		}
		log.WithError(err).WithField("attempt", attempt).Warn("transient failure, retrying")
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		wait *= 2
	}
}

// fetchOnce downloads file from src into a temp file in dir and renames it
// to its final name only once its digest is verified and it is on disk.
func (f *Fetcher) fetchOnce(ctx context.Context, dir string, file File, src Source) (err error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	body, err := src.Open(ctx, file.Name)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return err
	}
	defer body.Close()

	tmp, err := os.CreateTemp(dir, "."+file.Name+".*.partial")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close() // may already be closed; the error does not matter
			os.Remove(tmp.Name())
		}
	}()

	h := sha256.New()
	in := io.Reader(body)
	if file.Size > 0 {
		in = io.LimitReader(body, file.Size+1) // a larger body is wrong anyway
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %s with %d bytes received: %w", timeout, n, err)
		}
		return fmt.Errorf("download cut off after %d bytes: %w", n, err)
	}
	if file.Size > 0 && n > file.Size {
		return fmt.Errorf("%w: download is larger than the expected %d bytes", ErrDigest, file.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != file.SHA256 {
		return fmt.Errorf("%w: got %s (%d bytes), want %s", ErrDigest, sum, n, file.SHA256)
	}
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes it 0600
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, file.Name)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp.Name(), err)
	}
	renamed = true
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. It is best effort: some systems
// (Windows) cannot sync a folder, and the file itself is already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
