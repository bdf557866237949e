//go:build unix

package data

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// Edges of the two sources found by the mutation pass (scripts/mutate).

// Every name that is not a plain file name is refused before the go
// command runs (it does not exist here, so running it would say so).
func TestGoProxySourceRefusesPathNames(t *testing.T) {
	src := GoProxySource(filepath.Join(t.TempDir(), "no-such-go"))
	for _, name := range []string{"", ".", "..", "a/b", `a\b`, "/abs"} {
		_, err := src.Open(context.Background(), name)
		if err == nil || !strings.Contains(err.Error(), "bad file name") {
			t.Errorf("Open(%q) = %v, want a bad-file-name error", name, err)
		}
	}
}

// A module folder must be an absolute path: a relative one would be read
// relative to wherever the program runs.
func TestGoProxySourceRelativeDir(t *testing.T) {
	goCmd, _ := fakeGo(t, `echo '{"Path": "x", "Dir": "relative/dir"}'`)
	_, err := GoProxySource(goCmd).Open(context.Background(), TrainImagesFile)
	checkErr(t, err, nil, "no module folder")
}

// Without a temporary folder to run in, the go command is not run at all.
func TestGoProxySourceNoTempDir(t *testing.T) {
	mod := moduleCopy(t, map[string]string{TrainImagesFile: "x"})
	goCmd, _ := fakeGo(t, `echo '{"Dir": "`+mod+`"}'`)
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	_, err := GoProxySource(goCmd).Open(context.Background(), TrainImagesFile)
	checkErr(t, err, nil, "create temp folder")
}

// The HTTP source asks for the stored bytes. A server (S3, say) may label
// a stored .gz file "Content-Encoding: gzip"; a client that let Go's
// transport ask for gzip would get it unpacked, and the digest of the .gz
// could never match. The source also names itself.
func TestHTTPSourceAsksForStoredBytes(t *testing.T) {
	ff := newFakeFiles(5000)
	var agent string
	s := newServer(t, ff, func(w http.ResponseWriter, r *http.Request, c []byte) {
		agent = r.Header.Get("User-Agent")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(c)
	})
	dir := t.TempDir()
	if _, err := testFetcher(s.source()).ensure(context.Background(), dir, ff.specs); err != nil {
		t.Fatal(err)
	}
	checkDir(t, dir, ff, "a.gz")
	if agent != "mnist-gorgonia" {
		t.Errorf("User-Agent %q, want mnist-gorgonia", agent)
	}
}

// A base URL that cannot be joined with the file name is an error naming
// both.
func TestHTTPSourceBadBase(t *testing.T) {
	_, err := HTTPSource("http://example.invalid/%zz/", http.DefaultClient).Open(context.Background(), "a.gz")
	checkErr(t, err, nil, `bad URL "http://example.invalid/%zz/" + "a.gz"`)
}
