package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFiles are small stand-ins for the MNIST files, with their own digests.
type fakeFiles struct {
	specs   []File
	content map[string][]byte
}

func newFakeFiles(sizes ...int) fakeFiles {
	r := rand.New(rand.NewPCG(1, 2))
	ff := fakeFiles{content: map[string][]byte{}}
	for i, size := range sizes {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		name := string(rune('a'+i)) + ".gz"
		sum := sha256.Sum256(b)
		ff.specs = append(ff.specs, File{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(size)})
		ff.content[name] = b
	}
	return ff
}

// fault is how a test server misbehaves when asked for a file.
type fault func(w http.ResponseWriter, r *http.Request, content []byte)

func serveOK(w http.ResponseWriter, r *http.Request, content []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(content)
}

var faults = map[string]struct {
	fault fault
	msg   string // what the error for this source must say
}{
	"404": {func(w http.ResponseWriter, r *http.Request, _ []byte) { http.NotFound(w, r) }, "404 Not Found"},
	"500": {func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}, "500 Internal Server Error"},
	"hang before headers": {func(w http.ResponseWriter, r *http.Request, _ []byte) {
		<-r.Context().Done()
	}, "deadline exceeded"},
	"hang mid-body": {func(w http.ResponseWriter, r *http.Request, c []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(c)))
		w.Write(c[:len(c)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}, "timed out after"},
	"body cut off": {func(w http.ResponseWriter, r *http.Request, c []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(c)))
		w.Write(c[:len(c)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	}, "cut off after"},
	"wrong digest": {func(w http.ResponseWriter, r *http.Request, c []byte) {
		bad := bytes.Clone(c)
		bad[len(bad)/2] ^= 1
		w.Write(bad)
	}, "SHA-256 mismatch"},
	"too long": {func(w http.ResponseWriter, r *http.Request, c []byte) {
		w.Write(c)
		w.Write([]byte("and more"))
	}, "larger than the expected"},
	"redirect loop": {func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	}, "redirects"},
}

// server serves ff through f and counts requests.
type server struct {
	*httptest.Server
	requests atomic.Int32
}

func newServer(t *testing.T, ff fakeFiles, f fault) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		content, ok := ff.content[strings.TrimPrefix(r.URL.Path, "/mnist/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f(w, r, content)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) source() Source { return HTTPSource(s.URL+"/mnist/", s.Client()) }

// checkDir checks that dir holds exactly the named files, with the right
// content, and no temp files.
func checkDir(t *testing.T, dir string, ff fakeFiles, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("folder holds %q, want %q", got, names)
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, ff.content[name]) {
			t.Errorf("%s has the wrong content", name)
		}
	}
}

// ensureErr is ensure without the contents, for the tests about fetching.
func (f *Fetcher) ensureErr(ctx context.Context, dir string, files []File) error {
	_, err := f.ensure(ctx, dir, files)
	return err
}

func testFetcher(sources ...Source) *Fetcher {
	return &Fetcher{Sources: sources, Timeout: 200 * time.Millisecond, RetryWait: time.Millisecond}
}

// Every fault makes the fetcher move on to the next source and leaves no
// partial file behind.
func TestEnsureFallsBack(t *testing.T) {
	ff := newFakeFiles(64<<10, 1000)
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bad := newServer(t, ff, f.fault)
			good := newServer(t, ff, serveOK)
			dir := t.TempDir()
			fe := testFetcher(bad.source(), good.source())
			fe.Retries = 1
			if err := fe.ensureErr(context.Background(), dir, ff.specs); err != nil {
				t.Fatal(err)
			}
			checkDir(t, dir, ff, "a.gz", "b.gz")
			if good.requests.Load() != 2 {
				t.Errorf("good source got %d requests, want 2", good.requests.Load())
			}
		})
	}
}

// When every source fails, the error names the file and each source with
// its reason, and the folder holds nothing.
func TestEnsureAllFail(t *testing.T) {
	ff := newFakeFiles(64<<10, 1000)
	var sources []Source
	var want []string
	for _, f := range faults {
		s := newServer(t, ff, f.fault)
		sources = append(sources, s.source())
		want = append(want, s.URL+"/mnist/: ", f.msg)
	}
	dir := t.TempDir()
	start := time.Now()
	err := testFetcher(sources...).ensureErr(context.Background(), dir, ff.specs)
	t.Log(err)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range append(want, "a.gz", "every source failed") {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q", w)
		}
	}
	if !errors.Is(err, ErrDigest) {
		t.Errorf("error does not unwrap to ErrDigest")
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	checkDir(t, dir, ff)
}

// Transient failures are retried on the same source, up to Retries times;
// permanent ones are not.
func TestEnsureRetries(t *testing.T) {
	ff := newFakeFiles(100)
	tests := []struct {
		name         string
		fault        string
		failFirst    int32 // requests that fail before the server behaves
		retries      int
		wantOK       bool
		wantRequests int32
	}{
		{"500 then ok", "500", 1, 1, true, 2},
		{"500 twice, one retry", "500", 2, 1, false, 2},
		{"500 without retries", "500", 1, 0, false, 1},
		{"cut off then ok", "body cut off", 1, 2, true, 2},
		{"hang then ok", "hang before headers", 1, 1, true, 2},
		{"404 not retried", "404", 1, 3, false, 1},
		{"digest not retried", "wrong digest", 1, 3, false, 1},
		{"retries bounded", "500", 100, 100, false, maxRetries + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s *server
			s = newServer(t, ff, func(w http.ResponseWriter, r *http.Request, c []byte) {
				if s.requests.Load() <= tt.failFirst {
					faults[tt.fault].fault(w, r, c)
					return
				}
				serveOK(w, r, c)
			})
			dir := t.TempDir()
			fe := testFetcher(s.source())
			fe.Retries = tt.retries
			err := fe.ensureErr(context.Background(), dir, ff.specs)
			if (err == nil) != tt.wantOK {
				t.Fatalf("error %v, want ok=%v", err, tt.wantOK)
			}
			if got := s.requests.Load(); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
			if tt.wantOK {
				checkDir(t, dir, ff, "a.gz")
			} else {
				checkDir(t, dir, ff)
			}
		})
	}
}

// A source that failed for one file is not asked for the next ones.
func TestEnsureSkipsFailedSource(t *testing.T) {
	ff := newFakeFiles(10, 20, 30)
	bad := newServer(t, ff, faults["404"].fault)
	good := newServer(t, ff, serveOK)
	dir := t.TempDir()
	if err := testFetcher(bad.source(), good.source()).ensureErr(context.Background(), dir, ff.specs); err != nil {
		t.Fatal(err)
	}
	if bad.requests.Load() != 1 || good.requests.Load() != 3 {
		t.Errorf("bad source asked %d times, good %d; want 1 and 3", bad.requests.Load(), good.requests.Load())
	}
	checkDir(t, dir, ff, "a.gz", "b.gz", "c.gz")
}

// openCounter is a Source that records calls and serves from memory.
type openCounter struct {
	ff    fakeFiles
	calls atomic.Int32
}

func (o *openCounter) Name() string { return "counter" }
func (o *openCounter) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	o.calls.Add(1)
	return io.NopCloser(bytes.NewReader(o.ff.content[file])), nil
}

func TestEnsurePresentFiles(t *testing.T) {
	ff := newFakeFiles(10, 20)
	tests := []struct {
		name      string
		present   map[string][]byte // files put in the folder first
		dirFor    string            // a folder in place of this file
		wantCalls int32
		wantMsg   string
	}{
		{name: "all present", present: ff.content, wantCalls: 0},
		{name: "one missing", present: map[string][]byte{"a.gz": ff.content["a.gz"]}, wantCalls: 1},
		{name: "none present", wantCalls: 2},
		{name: "wrong content", present: map[string][]byte{"b.gz": []byte("mine")}, wantMsg: "delete it"},
		{name: "folder in the way", dirFor: "a.gz", wantMsg: "it is a folder, not a regular file"},
		{name: "wrong size", present: map[string][]byte{"b.gz": []byte("mine")}, wantMsg: "is 4 bytes, the original 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sub", "dir") // Ensure creates it
			if len(tt.present) > 0 || tt.dirFor != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, b := range tt.present {
				writeFile(t, dir, name, b)
			}
			if tt.dirFor != "" {
				if err := os.Mkdir(filepath.Join(dir, tt.dirFor), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			src := &openCounter{ff: ff}
			err := testFetcher(src).ensureErr(context.Background(), dir, ff.specs)
			if tt.wantMsg != "" {
				checkErr(t, err, nil, tt.wantMsg)
				if src.calls.Load() != 0 {
					t.Errorf("fetched %d files despite the bad one", src.calls.Load())
				}
				for name, b := range tt.present {
					if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, b) {
						t.Errorf("user file %s was changed", name)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.calls.Load() != tt.wantCalls {
				t.Errorf("%d downloads, want %d", src.calls.Load(), tt.wantCalls)
			}
			checkDir(t, dir, ff, "a.gz", "b.gz")
			if info, err := os.Stat(filepath.Join(dir, "b.gz")); err != nil || info.Mode().Perm() != 0o644 {
				t.Errorf("b.gz: %v, want mode 0644", err) // downloads are readable like any cache
			}
		})
	}
}

func TestEnsureWrongFileNamesIt(t *testing.T) {
	ff := newFakeFiles(10)
	tests := []struct {
		content []byte
		want    error
	}{
		{[]byte("not it, 10"), ErrDigest}, // the right size
		{[]byte("not it"), ErrFileSize},
		{[]byte("not it, and longer"), ErrFileSize},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		path := writeFile(t, dir, "a.gz", tt.content)
		err := testFetcher().ensureErr(context.Background(), dir, ff.specs)
		checkErr(t, err, tt.want, path)
	}
}

func TestEnsureNoSources(t *testing.T) {
	ff := newFakeFiles(10)
	err := (&Fetcher{}).ensureErr(context.Background(), t.TempDir(), ff.specs)
	checkErr(t, err, nil, "no sources")
}

// Cancelling the caller's context stops at once, without trying the other
// sources, and leaves nothing behind.
func TestEnsureCancelled(t *testing.T) {
	ff := newFakeFiles(64 << 10)
	hang := newServer(t, ff, faults["hang mid-body"].fault)
	other := &openCounter{ff: ff}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	dir := t.TempDir()
	fe := testFetcher(hang.source(), other)
	fe.Timeout = time.Minute
	err := fe.ensureErr(ctx, dir, ff.specs)
	checkErr(t, err, context.Canceled, "a.gz")
	if other.calls.Load() != 0 {
		t.Error("tried the next source after cancel")
	}
	checkDir(t, dir, ff)
}

// The real Ensure checks the real digests: a folder with wrong files is
// refused without any download.
func TestEnsureRealFilesChecked(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, TrainImagesFile, []byte("x"))
	src := &openCounter{}
	err := (&Fetcher{Sources: []Source{src}}).Ensure(context.Background(), dir)
	checkErr(t, err, ErrFileSize, "the original 9912422")
	if src.calls.Load() != 0 {
		t.Error("downloaded despite a bad file")
	}
}

func TestFiles(t *testing.T) {
	files := Files()
	files[0].SHA256 = "changed"
	if Files()[0].SHA256 == "changed" {
		t.Fatal("Files() shares its slice")
	}
	names := map[string]bool{}
	for _, f := range Files() {
		if len(f.SHA256) != 64 || f.Size <= 0 || filepath.Base(f.Name) != f.Name {
			t.Errorf("bad spec %+v", f)
		}
		names[f.Name] = true
	}
	for _, n := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		if !names[n] {
			t.Errorf("%s not in Files()", n)
		}
	}
}

func TestDefaultSources(t *testing.T) {
	var names []string
	for _, s := range DefaultSources(nil) {
		names = append(names, s.Name())
	}
	want := []string{ossciMirror, cvdfMirror, GoProxySource("").Name()}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("DefaultSources = %q, want %q", names, want)
	}
}
