package data

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"mnist/data/fileio"
)

// maxFileBytes caps an IDX file LoadSet reads: the largest pixel payload
// the reader accepts, plus room for headers and gzip's framing, which
// makes incompressible data a little larger.
const maxFileBytes = maxPixelBytes + 16<<20

// maxImageFileBytes caps a -predict image file (LoadImage), read whole
// before it is decoded: far above any photo or drawing of one digit.
const maxImageFileBytes = 64 << 20

// LoadSet reads an image file and a label file and checks them against each
// other: 28x28 images, equal counts, labels <= 9. Each file is read once,
// through fileio.ReadFile (a regular file, at most about 1 GiB). Errors are
// one line naming the file and the problem.
func LoadSet(ctx context.Context, imagesPath, labelsPath string) (*Set, error) {
	img, err := fileio.ReadFile(ctx, imagesPath, maxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("images file: %w", err)
	}
	lbl, err := fileio.ReadFile(ctx, labelsPath, maxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("labels file: %w", err)
	}
	return parseSet(imagesPath, img, labelsPath, lbl)
}

// parseSet is LoadSet on contents already read; the paths are for the
// errors. The fuzz test calls it directly: writing real files would make
// each run a thousand times slower.
func parseSet(imagesPath string, img []byte, labelsPath string, lbl []byte) (*Set, error) {
	pixels, n, rows, cols, err := ReadImages(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("images file %s: %w", imagesPath, err)
	}
	if rows != ImageRows || cols != ImageCols {
		return nil, fmt.Errorf("images file %s: %w: they are %dx%d", imagesPath, ErrShape, rows, cols)
	}
	labels, err := ReadLabels(bytes.NewReader(lbl))
	if err != nil {
		return nil, fmt.Errorf("labels file %s: %w", labelsPath, err)
	}
	if n != len(labels) {
		return nil, fmt.Errorf("%w: %s has %d images, %s has %d labels", ErrCount, imagesPath, n, labelsPath, len(labels))
	}
	return &Set{Images: pixels, Labels: labels}, nil
}

// Load reads the four standard files from dir (train-images-idx3-ubyte.gz,
// train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
// t10k-labels-idx1-ubyte.gz), fetching none: each must be there with its
// published size and SHA-256. See Fetcher.Load.
func Load(ctx context.Context, dir string) (train, test *Set, err error) {
	return (&Fetcher{}).Load(ctx, dir)
}

// Load is Ensure that keeps what it read: each of the four files is read
// once (or downloaded), its size checked before its SHA-256, and the sets
// are parsed from those same verified bytes, so a file swapped on disk
// after the check cannot be what is loaded.
func (f *Fetcher) Load(ctx context.Context, dir string) (train, test *Set, err error) {
	return f.load(ctx, dir, Files())
}

// load is Load for any four files in the order of Files(), so that tests
// can use small fake sets.
func (f *Fetcher) load(ctx context.Context, dir string, files []File) (train, test *Set, err error) {
	if len(files) != 4 {
		return nil, nil, fmt.Errorf("load: want the 4 files of Files(), got %d", len(files))
	}
	contents, err := f.ensure(ctx, dir, files)
	if err != nil {
		return nil, nil, err
	}
	path := func(i int) string { return filepath.Join(dir, files[i].Name) }
	train, err = parseSet(path(0), contents[0], path(1), contents[1])
	if err != nil {
		return nil, nil, fmt.Errorf("load training set: %w", err)
	}
	test, err = parseSet(path(2), contents[2], path(3), contents[3])
	if err != nil {
		return nil, nil, fmt.Errorf("load test set: %w", err)
	}
	return train, test, nil
}

// DefaultDir is the default data folder: the user's cache folder plus
// "mnist-gorgonia". It is never inside a Go package folder, so the 11 MB of
// downloads cannot end up in the module or in `go test` inputs.
func DefaultDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache folder to keep MNIST in: %w", err)
	}
	return filepath.Join(cache, "mnist-gorgonia"), nil
}
