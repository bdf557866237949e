package data

import (
	"bytes"
	"errors"
	"testing"
)

// Edges of the IDX reader found by the mutation pass (scripts/mutate).

// A header with zero columns (or rows) is refused whatever the other
// side: such a file would otherwise be "valid" with no pixels at all.
func TestReadImagesZeroSide(t *testing.T) {
	for _, dims := range [][]uint32{{1, 28, 0}, {1, 0, 28}, {0, 28, 0}, {1, 2000, 0}} {
		_, _, _, _, err := ReadImages(bytes.NewReader(idxFile(magicImages, dims, nil)))
		if !errors.Is(err, ErrSize) {
			t.Errorf("dims %v: %v, want ErrSize", dims, err)
		}
	}
}

// A payload larger than the reader's first buffer (1 MiB, doubled as
// needed) arrives whole and in order.
func TestReadImagesLargePayload(t *testing.T) {
	const n = 3000 // 3000 × 28 × 28 = 2.35 MB: the buffer grows twice
	file := images(n, 28, 28, 5)
	px, got, rows, cols, err := ReadImages(bytes.NewReader(file))
	if err != nil || got != n || rows != 28 || cols != 28 {
		t.Fatalf("ReadImages = %d images of %dx%d, %v", got, rows, cols, err)
	}
	if !bytes.Equal(px, file[16:]) {
		t.Errorf("the pixels differ from the file's")
	}
}
