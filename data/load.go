package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// LoadSet reads an image file and a label file and checks them against each
// other: 28x28 images, equal counts, labels <= 9. Errors name the file and
// the problem.
func LoadSet(imagesPath, labelsPath string) (*Set, error) {
	return loadSet(imagesPath, labelsPath, readFile)
}

// fileReader opens path and hands its content to read; see readFile.
type fileReader func(path, what string, read func(io.Reader) error) error

// loadSet is LoadSet with the file access passed in, so the fuzz test can
// serve files from memory (a real file costs ~1 ms to write, too slow to
// fuzz).
func loadSet(imagesPath, labelsPath string, readFile fileReader) (*Set, error) {
	var pixels []byte
	var n, rows, cols int
	err := readFile(imagesPath, "images", func(r io.Reader) (err error) {
		pixels, n, rows, cols, err = ReadImages(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	if rows != ImageRows || cols != ImageCols {
		return nil, fmt.Errorf("images file %s: %w: they are %dx%d", imagesPath, ErrShape, rows, cols)
	}
	var labels []byte
	err = readFile(labelsPath, "labels", func(r io.Reader) (err error) {
		labels, err = ReadLabels(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	if n != len(labels) {
		return nil, fmt.Errorf("%w: %s has %d images, %s has %d labels", ErrCount, imagesPath, n, labelsPath, len(labels))
	}
	return &Set{Images: pixels, Labels: labels}, nil
}

// Load reads the four standard files from dir: train-images-idx3-ubyte.gz,
// train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
// t10k-labels-idx1-ubyte.gz.
func Load(dir string) (train, test *Set, err error) {
	train, err = LoadSet(filepath.Join(dir, TrainImagesFile), filepath.Join(dir, TrainLabelsFile))
	if err != nil {
		return nil, nil, fmt.Errorf("load training set: %w", err)
	}
	test, err = LoadSet(filepath.Join(dir, TestImagesFile), filepath.Join(dir, TestLabelsFile))
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
		return "", fmt.Errorf("find the user cache folder (pass a data folder explicitly): %w", err)
	}
	return filepath.Join(cache, "mnist-gorgonia"), nil
}

// readFile opens path and hands it to read, naming the file in any error.
// Only regular files are read: a folder gives a clear error instead of a
// confusing read failure, and a FIFO cannot block the loader (so the check
// comes before Open, which would wait for a writer).
func readFile(path, what string, read func(io.Reader) error) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s file: %w", what, err)
	}
	if info.IsDir() {
		return fmt.Errorf("%s file %s is a directory, not a file", what, path)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s file %s is not a regular file (%s)", what, path, info.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s file: %w", what, err)
	}
	defer f.Close()
	if err := read(f); err != nil {
		return fmt.Errorf("%s file %s: %w", what, path, err)
	}
	return nil
}
