package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// Found by the mutation pass (scripts/mutate): checks of load and of the
// sources that the broader tests of load_test.go and fetch_test.go let pass.

// Files that pass their size and digest but do not parse as a set name the
// set: what was verified is what is parsed, and a verified file can still
// be no IDX file (a wrong digest table, say).
func TestLoadVerifiedButUnparsable(t *testing.T) {
	for _, c := range []struct {
		spoil int // the file replaced by verified garbage
		want  string
	}{
		{0, "load training set: "},
		{1, "load training set: "},
		{2, "load test set: "},
		{3, "load test set: "},
	} {
		dir := t.TempDir()
		files := fakeSet(t, dir, 6, 2)
		garbage := gz(t, []byte("not an IDX file"))
		writeFile(t, dir, files[c.spoil].Name, garbage)
		sum := sha256.Sum256(garbage)
		files[c.spoil].SHA256, files[c.spoil].Size = hex.EncodeToString(sum[:]), int64(len(garbage))
		train, test, err := (&Fetcher{}).load(context.Background(), dir, files)
		if train != nil || test != nil {
			t.Errorf("file %d spoilt: returned sets with %v", c.spoil, err)
		}
		checkErr(t, err, nil, c.want)
		checkErr(t, err, nil, files[c.spoil].Name)
	}
}

// load takes exactly the four files of Files().
func TestLoadWantsFourFiles(t *testing.T) {
	dir := t.TempDir()
	files := fakeSet(t, dir, 6, 2)
	for _, fs := range [][]File{nil, files[:3], append(files, files[0])} {
		train, test, err := (&Fetcher{}).load(context.Background(), dir, fs)
		if train != nil || test != nil {
			t.Errorf("%d files: returned sets", len(fs))
		}
		checkErr(t, err, nil, "load: want the 4 files of Files()")
	}
}

// DefaultSources gives its HTTP sources the client passed, or one of its
// own with timeouts when none is.
func TestDefaultSourcesClient(t *testing.T) {
	mine := &http.Client{}
	for _, c := range []struct {
		client *http.Client
		mine   bool
	}{{mine, true}, {nil, false}} {
		srcs := DefaultSources(c.client)
		if len(srcs) != 3 {
			t.Fatalf("%d sources", len(srcs))
		}
		for _, s := range srcs[:2] {
			h, ok := s.(*httpSource)
			if !ok || h.client == nil || (h.client == mine) != c.mine {
				t.Errorf("DefaultSources(%v): source %s has client %v", c.client, s.Name(), h.client)
			}
		}
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A response other than 200 is closed by the source, which returns only
// the error: its body would otherwise hold the connection.
func TestHTTPSourceClosesRefusedResponses(t *testing.T) {
	for _, code := range []int{404, 500, 301} {
		var closed atomic.Int32
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: code, Status: http.StatusText(code), Request: r,
				Body: countedBody{strings.NewReader("no"), &closed}}, nil
		}), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		body, err := HTTPSource("http://mirror.invalid/mnist/", client).Open(context.Background(), "a.gz")
		if err == nil || body != nil {
			t.Fatalf("%d: Open = %v, %v; want an error", code, body, err)
		}
		if closed.Load() != 1 {
			t.Errorf("%d: the response body closed %d times, want once", code, closed.Load())
		}
	}
}
