package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
)

// Found by the mutation pass: load's own checks, each of which the broader
// tests of load_test.go let pass.

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
