package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// Edges of the fetcher that the broader tests of fetch_test.go let pass:
// each of these was found by the mutation pass (scripts/mutate), a change
// to fetch.go that every other test survived.

// A folder that holds every file needs no source at all: Ensure must not
// ask for one, nor fail for want of one.
func TestEnsureCompleteFolderNeedsNoSource(t *testing.T) {
	ff := newFakeFiles(10, 20)
	dir := t.TempDir()
	for name, b := range ff.content {
		writeFile(t, dir, name, b)
	}
	if _, err := (&Fetcher{}).ensure(context.Background(), dir, ff.specs); err != nil {
		t.Fatalf("complete folder, no sources: %v", err)
	}
}

// A file that cannot even be looked at (here: a path through a regular
// file, which stat refuses with ENOTDIR) is an error naming it, not a
// crash and not a download over it.
func TestEnsureUncheckableFile(t *testing.T) {
	ff := newFakeFiles(10)
	dir := t.TempDir()
	writeFile(t, dir, "sub", []byte("a file, not a folder"))
	spec := ff.specs[0]
	spec.Name = "sub/a.gz"
	src := &openCounter{ff: ff}
	_, err := testFetcher(src).ensure(context.Background(), dir, []File{spec})
	checkErr(t, err, nil, "cannot read "+filepath.Join(dir, "sub", "a.gz"))
	if src.calls.Load() != 0 {
		t.Errorf("fetched despite the error")
	}
}

// A source that keeps failing transiently: the error says how many
// attempts were made, and only when there was more than one.
func TestEnsureRetryErrorCountsAttempts(t *testing.T) {
	ff := newFakeFiles(100)
	for _, tt := range []struct {
		retries int
		want    string
	}{{0, ""}, {1, "(after 2 attempts)"}, {2, "(after 3 attempts)"}} {
		s := newServer(t, ff, faults["500"].fault)
		fe := testFetcher(s.source())
		fe.Retries = tt.retries
		_, err := fe.ensure(context.Background(), t.TempDir(), ff.specs)
		if err == nil {
			t.Fatalf("retries %d: no error", tt.retries)
		}
		if tt.want == "" && strings.Contains(err.Error(), "attempts") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("retries %d: error %q, want it to say %q", tt.retries, err, tt.want)
		}
	}
}

// Each way of running out of time says so, with the timeout, whether the
// source stalls before the first byte or in the middle of the body.
func TestEnsureTimeoutMessages(t *testing.T) {
	ff := newFakeFiles(64 << 10)
	for _, tt := range []struct {
		fault string
		want  []string
	}{
		{"hang before headers", []string{"timed out after 200ms"}},
		{"hang mid-body", []string{"timed out after 200ms with ", " bytes received"}},
	} {
		s := newServer(t, ff, faults[tt.fault].fault)
		_, err := testFetcher(s.source()).ensure(context.Background(), t.TempDir(), ff.specs)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to say %q", tt.fault, err, w)
			}
		}
	}
}

// A body that stops sending is given up after the stall time, long before
// the attempt's timeout, and retried as a transient failure; one that
// trickles, never pausing for the stall time, is waited for however long
// it takes in all.
func TestEnsureStall(t *testing.T) {
	ff := newFakeFiles(64 << 10)
	stopped := newServer(t, ff, faults["hang mid-body"].fault)
	fe := testFetcher(stopped.source())
	fe.Timeout, fe.Stall, fe.Retries = time.Minute, 100*time.Millisecond, 1
	start := time.Now()
	_, err := fe.ensure(context.Background(), t.TempDir(), ff.specs)
	if err == nil || !strings.Contains(err.Error(), "stalled: nothing received for 100ms after 32768 bytes") ||
		!strings.Contains(err.Error(), "(after 2 attempts)") {
		t.Errorf("a body that stops: error %v, want it stalled, after 2 attempts", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a body that stops took %s to give up, with a stall time of 100ms", took)
	}

	trickle := newServer(t, ff, func(w http.ResponseWriter, r *http.Request, c []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(c)))
		for len(c) > 0 { // 16 pieces, 40 ms apart: 600 ms in all
			k := min(len(c), 4<<10)
			w.Write(c[:k])
			w.(http.Flusher).Flush()
			c = c[k:]
			time.Sleep(40 * time.Millisecond)
		}
	})
	fe = testFetcher(trickle.source())
	fe.Timeout, fe.Stall = time.Minute, 300*time.Millisecond
	if _, err := fe.ensure(context.Background(), t.TempDir(), ff.specs[:1]); err != nil {
		t.Errorf("a body that trickles for longer than the stall time: %v", err)
	}
}

// A source that does not answer a request (a proxy that accepts the
// connection and never answers CONNECT, say) is given up after the answer
// time, whatever the client's own timeouts, and not retried.
func TestHTTPSourceNoAnswer(t *testing.T) {
	ff := newFakeFiles(10)
	s := newServer(t, ff, faults["hang before headers"].fault)
	src := HTTPSource(s.URL+"/mnist/", &http.Client{}).(*httpSource) // no timeouts of its own
	src.answer = 100 * time.Millisecond
	fe := testFetcher(src)
	fe.Timeout, fe.Retries = time.Minute, 2
	start := time.Now()
	_, err := fe.ensure(context.Background(), t.TempDir(), ff.specs)
	if err == nil || !strings.Contains(err.Error(), "a.gz: no answer within 100ms") || strings.Contains(err.Error(), "attempts") {
		t.Errorf("error %v, want no answer within 100ms, not retried", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("gave up after %s", took)
	}
}

// vanishingDir is a source whose Open removes the data folder, so that the
// temporary file cannot be created: the error says so and nothing panics.
type vanishingDir struct {
	dir string
	ff  fakeFiles
}

func (v *vanishingDir) Name() string { return "vanishing" }
func (v *vanishingDir) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	if err := os.RemoveAll(v.dir); err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader(string(v.ff.content[file]))), nil
}

func TestEnsureCannotCreateTempFile(t *testing.T) {
	ff := newFakeFiles(10)
	dir := filepath.Join(t.TempDir(), "data")
	_, err := testFetcher(&vanishingDir{dir, ff}).ensure(context.Background(), dir, ff.specs)
	checkErr(t, err, nil, "save the download: cannot write "+filepath.Join(dir, "a.gz"))
}

// Wrong content is never retried, even when the same error also carries a
// transient cause (a body that was too long and then cut off, say): the
// same source would deliver the same wrong bytes again.
func TestIsTransientDigestWins(t *testing.T) {
	for _, cause := range []error{io.ErrUnexpectedEOF, context.DeadlineExceeded} {
		err := errors.Join(fmt.Errorf("%w: got x", ErrDigest), cause)
		if isTransient(err) {
			t.Errorf("isTransient(%v) = true, want false", err)
		}
	}
}

// closingSource serves each file through a body that counts how often it
// is opened and closed; bodies of files in cut end with an error halfway.
type closingSource struct {
	ff             fakeFiles
	cut            map[string]bool
	extra          []byte // appended to every body: a body too large
	opened, closed atomic.Int32
}

type countedBody struct {
	io.Reader
	closed *atomic.Int32
}

func (b countedBody) Close() error { b.closed.Add(1); return nil }

func (s *closingSource) Name() string { return "closing" }
func (s *closingSource) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	s.opened.Add(1)
	content := append(bytes.Clone(s.ff.content[file]), s.extra...)
	var r io.Reader = bytes.NewReader(content)
	if s.cut[file] {
		r = io.MultiReader(bytes.NewReader(content[:len(content)/2]), iotest.ErrReader(errors.New("connection reset")))
	}
	return countedBody{r, &s.closed}, nil
}

// Every body the fetcher opens is closed, whether the download succeeds,
// breaks off, or is too large: an open body holds a connection.
func TestFetchClosesEveryBody(t *testing.T) {
	ff := newFakeFiles(10, 20)
	for _, c := range []struct {
		name    string
		src     *closingSource
		wantErr bool
	}{
		{"good", &closingSource{ff: ff}, false},
		{"cut off", &closingSource{ff: ff, cut: map[string]bool{"b.gz": true}}, true},
		{"too large", &closingSource{ff: ff, extra: []byte{1}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fe := testFetcher(c.src)
			fe.Retries = 1
			err := fe.ensureErr(context.Background(), t.TempDir(), ff.specs)
			if (err != nil) != c.wantErr {
				t.Fatalf("Ensure: %v", err)
			}
			if o, cl := c.src.opened.Load(), c.src.closed.Load(); o == 0 || o != cl {
				t.Errorf("%d bodies opened, %d closed", o, cl)
			}
		})
	}
}
