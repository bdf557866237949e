package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"503", &statusError{code: 503}, true},
		{"429", &statusError{code: 429}, true},
		{"404", &statusError{code: 404}, false},
		{"403", &statusError{code: 403}, false},
		{"attempt timed out", fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{"cut off", fmt.Errorf("copy: %w", io.ErrUnexpectedEOF), true},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"read timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, true},
		{"dial timeout", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, false},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{"no such host", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", IsNotFound: true}}, false},
		{"digest", fmt.Errorf("%w: got x", ErrDigest), false},
		{"other", errors.New("stopped after 10 redirects"), false},
	}
	for _, tt := range tests {
		if got := isTransient(tt.err); got != tt.want {
			t.Errorf("%s: isTransient(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// A mirror that refuses connections is given up at once, without retries
// or waits, and the next source is used.
func TestEnsureConnectionRefused(t *testing.T) {
	ff := newFakeFiles(100)
	gone := httptest.NewServer(nil)
	gone.Close()
	fe := testFetcher(HTTPSource(gone.URL+"/mnist/", nil), &openCounter{ff: ff})
	fe.Retries, fe.RetryWait = 3, time.Second
	start := time.Now()
	if err := fe.ensureErr(context.Background(), t.TempDir(), ff.specs); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("took %s: a refused connection was retried", d)
	}
}
