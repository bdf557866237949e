package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"mnist/data/fileio"
)

func writeFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSet(t *testing.T) {
	img3 := images(3, 28, 28, 0)
	lbl3 := labels(3, 1, 4)
	tests := []struct {
		name     string
		img, lbl []byte
		imgDir   bool   // a folder where the image file should be
		noLbl    bool   // label file missing
		wantErr  error  // kind, nil for success
		wantMsg  string // substring of the error
		wantPath string // "img" or "lbl": the file the error must name
	}{
		{name: "gzip", img: gz(t, img3), lbl: gz(t, lbl3)},
		{name: "raw under .gz names", img: img3, lbl: lbl3},
		{name: "mixed", img: gz(t, img3), lbl: lbl3},
		{name: "not 28x28", img: images(3, 28, 27, 0), lbl: lbl3, wantErr: ErrShape, wantMsg: "28x27", wantPath: "img"},
		{name: "fewer labels", img: img3, lbl: labels(3, 1), wantErr: ErrCount, wantMsg: "3 images", wantPath: "lbl"},
		{name: "32x32", img: images(3, 32, 32, 0), lbl: lbl3, wantErr: ErrShape, wantMsg: "32x32", wantPath: "img"},
		{name: "more labels", img: img3, lbl: labels(3, 1, 4, 1), wantErr: ErrCount, wantMsg: "4 labels", wantPath: "lbl"},
		{name: "3-D labels", img: img3, lbl: idxFile(magicImages, []uint32{3, 1, 1}, []byte{3, 1, 4}), wantErr: ErrDims, wantMsg: "3, want 1", wantPath: "lbl"},
		{name: "wrong magic", img: gz(t, idxFile(0x00000c03, []uint32{3, 28, 28}, make([]byte, 3*ImageSize))), lbl: lbl3, wantErr: ErrMagic, wantMsg: "data type 0x0c", wantPath: "img"},
		{name: "label 10", img: img3, lbl: labels(3, 10, 4), wantErr: ErrLabel, wantPath: "lbl"},
		{name: "files swapped", img: lbl3, lbl: img3, wantErr: ErrDims, wantPath: "img"},
		{name: "empty images", img: []byte{}, lbl: lbl3, wantErr: ErrEmpty, wantPath: "img"},
		{name: "empty labels", img: img3, lbl: []byte{}, wantErr: ErrEmpty, wantPath: "lbl"},
		{name: "truncated gz", img: gz(t, img3)[:40], lbl: lbl3, wantErr: ErrTruncated, wantPath: "img"},
		{name: "gz of garbage", img: gz(t, []byte("<html>404</html>")), lbl: lbl3, wantErr: ErrMagic, wantPath: "img"},
		{name: "html page", img: []byte("<html>Access Denied</html>"), lbl: lbl3, wantErr: ErrMagic, wantPath: "img"},
		{name: "trailing garbage", img: cat(img3, []byte("x")), lbl: lbl3, wantErr: ErrTrailing, wantPath: "img"},
		{name: "directory", imgDir: true, lbl: lbl3, wantMsg: "it is a folder, not a regular file", wantPath: "img"},
		{name: "missing", img: img3, noLbl: true, wantErr: fs.ErrNotExist, wantPath: "lbl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			imgPath := filepath.Join(dir, "x-images-idx3-ubyte.gz")
			lblPath := filepath.Join(dir, "x-labels-idx1-ubyte.gz")
			if tt.imgDir {
				if err := os.Mkdir(imgPath, 0o755); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, dir, filepath.Base(imgPath), tt.img)
			}
			if !tt.noLbl {
				writeFile(t, dir, filepath.Base(lblPath), tt.lbl)
			}
			s, err := LoadSet(context.Background(), imgPath, lblPath)
			if tt.wantPath == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.Len() != 3 || len(s.Images) != 3*ImageSize || string(s.Labels) != "\x03\x01\x04" {
					t.Fatalf("got %d images, %d pixels, labels %v", s.Len(), len(s.Images), s.Labels)
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.wantMsg)
			path := map[string]string{"img": imgPath, "lbl": lblPath}[tt.wantPath]
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}

// writeSet writes a valid set of n images under the standard names.
func writeSet(t *testing.T, dir, imgName, lblName string, n int) {
	t.Helper()
	ls := make([]byte, n)
	for i := range ls {
		ls[i] = byte(i % NumClasses)
	}
	writeFile(t, dir, imgName, gz(t, images(n, 28, 28, 0)))
	writeFile(t, dir, lblName, gz(t, labels(ls...)))
}

// fakeSet writes n images and labels under the four standard names' roles
// (train images, train labels, test images, test labels) with their own
// digests, as Files() would list them.
func fakeSet(t *testing.T, dir string, nTrain, nTest int) []File {
	t.Helper()
	var files []File
	for _, f := range []struct {
		name string
		n    int
	}{{TrainImagesFile, nTrain}, {TrainLabelsFile, nTrain}, {TestImagesFile, nTest}, {TestLabelsFile, nTest}} {
		var b []byte
		if strings.Contains(f.name, "images") {
			b = gz(t, images(f.n, 28, 28, 0))
		} else {
			ls := make([]byte, f.n)
			for i := range ls {
				ls[i] = byte(i % NumClasses)
			}
			b = gz(t, labels(ls...))
		}
		writeFile(t, dir, f.name, b)
		sum := sha256.Sum256(b)
		files = append(files, File{Name: f.name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))})
	}
	return files
}

func TestLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := fakeSet(t, dir, 6, 2)
	train, test, err := (&Fetcher{}).load(ctx, dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 6 || test.Len() != 2 {
		t.Fatalf("got %d/%d images, want 6/2", train.Len(), test.Len())
	}

	// A file swapped on disk just after it was read and verified: the sets
	// come from the verified bytes, not from a second read of the disk.
	swapped := t.TempDir()
	fakeSet(t, swapped, 6, 2)
	swapDir := t.TempDir()
	fakeSet(t, swapDir, 4, 1) // a valid set of other sizes, found by a second read
	reads := map[string]int{}
	fe := &Fetcher{readFile: func(ctx context.Context, path string, maxSize int64) ([]byte, error) {
		reads[filepath.Base(path)]++
		b, err := fileio.ReadFile(ctx, filepath.Join(swapped, filepath.Base(path)), maxSize)
		if err == nil {
			// Now replace it: anything reading path again gets the other set.
			other, _ := os.ReadFile(filepath.Join(swapDir, filepath.Base(path)))
			os.WriteFile(path, other, 0o644)
		}
		return b, err
	}}
	train, test, err = fe.load(ctx, dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 6 || test.Len() != 2 {
		t.Errorf("got %d/%d images, want the verified 6/2: a file was read twice", train.Len(), test.Len())
	}
	for name, n := range reads {
		if n != 1 {
			t.Errorf("%s read %d times, want once", name, n)
		}
	}
	files = fakeSet(t, dir, 6, 2) // put the folder back

	// Load verifies what it parses: a file of the right size whose bytes
	// differ is refused, not parsed.
	other := fakeSet(t, t.TempDir(), 6, 3)
	spoilt := slices.Clone(files)
	spoilt[3].SHA256 = other[3].SHA256
	_, _, err = (&Fetcher{}).load(ctx, dir, spoilt)
	checkErr(t, err, ErrDigest, TestLabelsFile)

	if err := os.Remove(filepath.Join(dir, TestLabelsFile)); err != nil {
		t.Fatal(err)
	}
	_, _, err = (&Fetcher{}).load(ctx, dir, files)
	checkErr(t, err, nil, TestLabelsFile)
	if !strings.Contains(err.Error(), "no sources") {
		t.Errorf("error %q does not say it cannot fetch the file", err)
	}
	_, _, err = Load(ctx, filepath.Join(dir, "nowhere"))
	checkErr(t, err, nil, TrainImagesFile)
}

func TestDefaultDir(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	dir, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != "mnist-gorgonia" || !filepath.IsAbs(dir) {
		t.Errorf("DefaultDir() = %q", dir)
	}
	if runtime.GOOS == "linux" && dir != filepath.Join(cache, "mnist-gorgonia") {
		t.Errorf("DefaultDir() = %q, want it under XDG_CACHE_HOME %q", dir, cache)
	}
	if wd, _ := os.Getwd(); strings.HasPrefix(dir, wd) {
		t.Errorf("DefaultDir() %q is inside the package folder", dir)
	}
	if runtime.GOOS == "linux" {
		t.Setenv("XDG_CACHE_HOME", "")
		t.Setenv("HOME", "")
		if _, err := DefaultDir(); err == nil || errors.Unwrap(err) == nil {
			t.Errorf("no cache folder: got %v, want a wrapped error", err)
		}
	}
}
