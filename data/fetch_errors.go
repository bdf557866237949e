package data

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// sourceError is why one source failed for one file.
type sourceError struct {
	source string
	err    error
}

func (e *sourceError) Error() string { return e.source + ": " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// fetchError says that every source failed for a file. It prints on one
// line, listing each source and its reason, and unwraps to all the reasons
// so errors.Is(err, ErrDigest) still works.
type fetchError struct {
	file, dir string
	failures  []error
}

func (e *fetchError) Error() string {
	parts := make([]string, len(e.failures))
	for i, f := range e.failures {
		parts[i] = f.Error()
	}
	return "could not fetch " + e.file + " into " + e.dir + ", every source failed: " + strings.Join(parts, "; ")
}

func (e *fetchError) Unwrap() []error { return e.failures }

// isTransient reports whether trying the same source again may help.
// Wrong content, 4xx answers, redirect loops and failures to connect at all
// are not retried: they would fail again and only delay the next source.
func isTransient(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout
	}
	if errors.Is(err, ErrDigest) || errors.Is(err, ErrFileSize) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errStalled) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
