//go:build unix

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mnist/data"
)

// realDataDir is the default data folder with the four verified MNIST
// files, fetched there first if missing. Like the end-to-end test, the tests
// that need it fail rather than skip when MNIST cannot be had.
func realDataDir(t testing.TB) string {
	t.Helper()
	dir, err := data.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := (&data.Fetcher{Sources: data.DefaultSources(nil)}).Ensure(ctx, dir); err != nil {
		t.Fatalf("get MNIST into %s: %v", dir, err)
	}
	return dir
}

// copyDataDir copies the four real files into a fresh folder made by mkdir,
// so that a test can spoil one of them without touching the user's copy.
func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	for _, f := range data.Files() {
		b, err := os.ReadFile(filepath.Join(from, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// folderDigest hashes a folder's listing (names, types, permissions, sizes)
// and the content of its files, recursively, so that any change made by a
// run shows up as a different digest.
func folderDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%v\x00%d\x00", rel, info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(h, f); err != nil {
				return fmt.Errorf("hash %s: %w", path, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("hash %s: %v", dir, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// runCmd runs a prepared command of the binary and returns its exit code and
// output; err is set only when it could not be started at all.
func runCmd(cmd *exec.Cmd) (code int, stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code, err = exit.ExitCode(), nil
	}
	return code, out.String(), errb.String(), err
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func gzipped(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gunzipped(t *testing.T, gz []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// idx builds an IDX file: magic, dimension sizes, payload.
func idx(magic uint32, dims []uint32, payload []byte) []byte {
	b := be.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = be.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

// TestBadDataFiles spoils one file of a copy of the real data folder per
// case and checks both levels a bad file meets:
//
//   - the binary, which verifies each file's SHA-256 before reading any:
//     exit 1, the last stderr line names the file and the problem, no stack
//     trace, nothing on stdout, and the folder exactly as it was;
//   - data.LoadSet, which a file with the right digest never reaches with
//     bad content, so the IDX-level check is asserted on it directly: the
//     error names the file and the specific problem.
//
// The test set's files are the ones spoilt, as they are small enough to
// load in a few milliseconds.
func TestBadDataFiles(t *testing.T) {
	real := realDataDir(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(real, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	imgGz, lblGz := read(data.TestImagesFile), read(data.TestLabelsFile)
	img, lbl := gunzipped(t, imgGz), gunzipped(t, lblGz)
	const imgHeader, lblHeader = 16, 8 // bytes before the payload
	n := uint32(len(lbl) - lblHeader)

	withLabel10 := bytes.Clone(lbl)
	withLabel10[lblHeader+1234] = 10
	wrongMagic := bytes.Clone(img)
	wrongMagic[0], wrongMagic[1] = 'P', 'K' // a zip file, say

	tests := []struct {
		name    string
		file    string                          // which file is spoilt
		content []byte                          // its new content (unless setup is set)
		setup   func(t *testing.T, path string) // makes the bad entry at path instead
		// The last stderr line of the binary must contain the path and this.
		binProblem string
		// data.LoadSet must fail with this kind and text (dataKind nil and
		// dataMsg "" mean it must succeed).
		dataKind error
		dataMsg  string
	}{
		{name: "empty file", file: data.TestImagesFile, content: []byte{},
			binProblem: "SHA-256 mismatch", dataKind: data.ErrEmpty},
		{name: "truncated gz", file: data.TestImagesFile, content: imgGz[:len(imgGz)/2],
			binProblem: "SHA-256 mismatch", dataKind: data.ErrTruncated, dataMsg: "pixel data"},
		{name: "gz of garbage", file: data.TestImagesFile, content: gzipped(t, []byte("<html><body>Access Denied</body></html>")),
			binProblem: "SHA-256 mismatch", dataKind: data.ErrMagic, dataMsg: "not an IDX file"},
		{name: "wrong magic", file: data.TestImagesFile, content: gzipped(t, wrongMagic),
			binProblem: "SHA-256 mismatch", dataKind: data.ErrMagic, dataMsg: "0x504b0803"},
		{name: "3-D labels", file: data.TestLabelsFile, content: gzipped(t, idx(0x00000803, []uint32{n, 1, 1}, lbl[lblHeader:])),
			binProblem: "SHA-256 mismatch", dataKind: data.ErrDims, dataMsg: "3, want 1"},
		{name: "32x32 images", file: data.TestImagesFile, content: gzipped(t, idx(0x00000803, []uint32{n, 32, 32}, make([]byte, n*32*32))),
			binProblem: "SHA-256 mismatch", dataKind: data.ErrShape, dataMsg: "32x32"},
		{name: "more labels than images", file: data.TestLabelsFile, content: gzipped(t, idx(0x00000801, []uint32{n + 1}, append(bytes.Clone(lbl[lblHeader:]), 7))),
			binProblem: "SHA-256 mismatch", dataKind: data.ErrCount, dataMsg: fmt.Sprintf("%d images", n)},
		{name: "label of 10", file: data.TestLabelsFile, content: gzipped(t, withLabel10),
			binProblem: "SHA-256 mismatch", dataKind: data.ErrLabel, dataMsg: "label 10 at index 1234"},
		// The reader tells gzip by its magic bytes, so the decompressed
		// original under the .gz name is valid input for data.LoadSet (and
		// gives the same set). The binary still refuses it: the folder must
		// hold the published files, byte for byte, and it never rewrites a
		// file the user put there.
		{name: "raw IDX named .gz", file: data.TestImagesFile, content: img,
			binProblem: "SHA-256 mismatch"},
		{name: "directory", file: data.TestImagesFile,
			setup: func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			binProblem: "it is a folder, not a regular file", dataMsg: "it is a folder, not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDataDir(t, real, dir)
			path := filepath.Join(dir, tt.file)
			if tt.setup != nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				tt.setup(t, path)
			} else if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}

			// The size is checked before the digest: a file of another
			// size is refused without being hashed.
			problem := tt.binProblem
			if problem == "SHA-256 mismatch" && int64(len(tt.content)) != fileSize(t, tt.file) {
				problem = "wrong file size"
			}
			before := folderDigest(t, dir)
			code, stdout, stderr := runTrain(t, "-data-dir", dir, "-epochs", "1")
			checkOneLineError(t, code, stdout, stderr, path, problem)
			if after := folderDigest(t, dir); after != before {
				t.Errorf("the failed run changed the data folder")
			}

			imgPath, lblPath := filepath.Join(dir, data.TestImagesFile), filepath.Join(dir, data.TestLabelsFile)
			s, err := data.LoadSet(context.Background(), imgPath, lblPath)
			if tt.dataKind == nil && tt.dataMsg == "" {
				if err != nil {
					t.Fatalf("data.LoadSet: %v", err)
				}
				if want := int(n); s.Len() != want || !bytes.Equal(s.Images, img[imgHeader:]) || !bytes.Equal(s.Labels, lbl[lblHeader:]) {
					t.Errorf("data.LoadSet read %d images that differ from the original's %d", s.Len(), want)
				}
				return
			}
			if err == nil {
				t.Fatalf("data.LoadSet accepted the bad %s", tt.file)
			}
			msg := err.Error()
			if tt.dataKind != nil && !errors.Is(err, tt.dataKind) {
				t.Errorf("data.LoadSet error %q is not %q", msg, tt.dataKind)
			}
			if !strings.Contains(msg, path) || !strings.Contains(msg, tt.dataMsg) || strings.Contains(msg, "\n") {
				t.Errorf("data.LoadSet error %q should be one line naming %s and %q", msg, path, tt.dataMsg)
			}
		})
	}
}

// TestUnreadableDataFile: a data file the user may not read. Root reads
// files whatever their mode, so when the tests run as root the binary is
// run as the unprivileged user nobody (65534); where that is not allowed
// either, the case is skipped.
func TestUnreadableDataFile(t *testing.T) {
	real := realDataDir(t)
	// A folder nobody can enter: t.TempDir's parents are private (0700).
	dir, err := os.MkdirTemp("", "train-unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	copyDataDir(t, real, dir)
	path := filepath.Join(dir, data.TestLabelsFile)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "-data-dir", dir, "-epochs", "1")
	if os.Geteuid() == 0 {
		const nobody = 65534
		for _, d := range []string{dir, filepath.Dir(binary)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	before := folderDigest(t, dir)
	code, stdout, stderr, err := runCmd(cmd)
	if err != nil {
		if os.Geteuid() == 0 {
			t.Skipf("running as root and cannot run the binary as nobody (%v): root reads any file", err)
		}
		t.Fatal(err)
	}
	checkOneLineError(t, code, stdout, stderr, path, "permission denied")
	if after := folderDigest(t, dir); after != before {
		t.Errorf("the failed run changed the data folder")
	}
}

// fileSize is the published size of the data file name.
func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	for _, f := range data.Files() {
		if f.Name == name {
			return f.Size
		}
	}
	t.Fatalf("%s is not a data file", name)
	return 0
}

// checkOneLineError asserts a failed run: exit 1, nothing on stdout, no
// stack trace, and a last stderr line that is the program's one error line
// naming path and problem.
func checkOneLineError(t *testing.T, code int, stdout, stderr, path, problem string) {
	t.Helper()
	if code != exitRuntime {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitRuntime, stderr)
	}
	if stdout != "" {
		t.Errorf("a failed run printed to stdout:\n%s", stdout)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stderr has a panic or stack trace:\n%s", stderr)
	}
	last := lastLine(stderr)
	t.Logf("exit %d: %s", code, last)
	if !strings.HasPrefix(last, "train: ") || !strings.Contains(last, path) || !strings.Contains(last, problem) {
		t.Errorf("last stderr line %q should be one error naming %s and %q", last, path, problem)
	}
}
