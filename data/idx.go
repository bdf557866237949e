package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// IDX magic numbers: two zero bytes, data type 0x08 (unsigned byte), number
// of dimensions.
const (
	magicImages uint32 = 0x00000803
	magicLabels uint32 = 0x00000801
)

// Limits checked before allocating, so that a 16-byte header cannot make
// the reader ask for gigabytes. MNIST itself is 60,000 28x28 images.
const (
	maxItems      = 10_000_000 // images or labels in one file
	maxSide       = 1024       // rows or columns of one image
	maxPixelBytes = 1 << 30    // whole pixel payload
	firstChunk    = 1 << 20    // payload buffer starts here and doubles
)

// ReadImages reads an IDX file of unsigned-byte images (magic 0x00000803),
// gzip-compressed or raw. It returns the pixels row-major, image after image.
// It does not insist on 28x28; LoadSet does.
func ReadImages(r io.Reader) (pixels []byte, n, rows, cols int, err error) {
	in, err := decompress(r)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	dims, err := readHeader(in, magicImages)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	// Checked as uint64 so the product cannot overflow, even with 32-bit int.
	un, urows, ucols := uint64(dims[0]), uint64(dims[1]), uint64(dims[2])
	switch {
	case un > maxItems:
		return nil, 0, 0, 0, fmt.Errorf("%w: %d images, limit %d", ErrSize, un, maxItems)
	case urows == 0 || ucols == 0 || urows > maxSide || ucols > maxSide:
		return nil, 0, 0, 0, fmt.Errorf("%w: images are %dx%d, want 1..%d on each side", ErrSize, urows, ucols, maxSide)
	case un*urows*ucols > maxPixelBytes:
		return nil, 0, 0, 0, fmt.Errorf("%w: %d images of %dx%d is %d bytes, limit %d", ErrSize, un, urows, ucols, un*urows*ucols, maxPixelBytes)
	}
	n, rows, cols = int(un), int(urows), int(ucols)
	pixels, err = readPayload(in, n*rows*cols, "pixel data")
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if err := expectEnd(in, "pixel data"); err != nil {
		return nil, 0, 0, 0, err
	}
	return pixels, n, rows, cols, nil
}

// ReadLabels reads an IDX file of unsigned-byte labels (magic 0x00000801),
// gzip-compressed or raw. Every label must be a digit 0..9.
func ReadLabels(r io.Reader) ([]byte, error) {
	in, err := decompress(r)
	if err != nil {
		return nil, err
	}
	dims, err := readHeader(in, magicLabels)
	if err != nil {
		return nil, err
	}
	if dims[0] > maxItems {
		return nil, fmt.Errorf("%w: %d labels, limit %d", ErrSize, dims[0], maxItems)
	}
	labels, err := readPayload(in, int(dims[0]), "labels")
	if err != nil {
		return nil, err
	}
	if err := expectEnd(in, "labels"); err != nil {
		return nil, err
	}
	for i, l := range labels {
		if l >= NumClasses {
			return nil, fmt.Errorf("%w: label %d at index %d, want 0..%d", ErrLabel, l, i, NumClasses-1)
		}
	}
	return labels, nil
}

// readHeader reads the magic number and the dimension sizes it announces.
func readHeader(r io.Reader, want uint32) ([]uint32, error) {
	var buf [4]byte
	if _, err := io.ReadFull(r, buf[:]); errors.Is(err, io.EOF) {
		// Nothing at all: only reachable for a gzip stream of zero bytes,
		// since decompress already caught a raw empty file.
		return nil, ErrEmpty
	} else if err != nil {
		return nil, readErr(err, "header")
	}
	magic := binary.BigEndian.Uint32(buf[:])
	if err := checkMagic(magic, want); err != nil {
		return nil, err
	}
	dims := make([]uint32, want&0xff)
	for i := range dims {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return nil, readErr(err, "header")
		}
		dims[i] = binary.BigEndian.Uint32(buf[:])
	}
	return dims, nil
}

// checkMagic tells apart a file of the wrong kind (e.g. labels given as
// images), an IDX file of another data type, and something that is not IDX.
func checkMagic(magic, want uint32) error {
	if magic == want {
		return nil
	}
	if magic>>8 == want>>8 {
		hint := ""
		switch magic {
		case magicLabels:
			hint = " (a label file?)"
		case magicImages:
			hint = " (an image file?)"
		}
		return fmt.Errorf("%w: %d, want %d%s", ErrDims, magic&0xff, want&0xff, hint)
	}
	if magic>>16 == 0 {
		return fmt.Errorf("%w: 0x%08x is IDX data type 0x%02x, want unsigned byte (magic 0x%08x)", ErrMagic, magic, magic>>8&0xff, want)
	}
	return fmt.Errorf("%w: 0x%08x, want 0x%08x (not an IDX file?)", ErrMagic, magic, want)
}

// readPayload reads exactly total bytes. The buffer starts small and doubles,
// so a header that promises more than the file holds costs little memory.
func readPayload(r io.Reader, total int, what string) ([]byte, error) {
	buf := make([]byte, min(total, firstChunk))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: %s has %d of %d bytes", ErrTruncated, what, got, total)
			}
			return nil, fmt.Errorf("read %s after %d of %d bytes: %w", what, got, total, err)
		}
		if got == total {
			return buf, nil
		}
		bigger := make([]byte, min(total, 2*len(buf)))
		copy(bigger, buf)
		buf = bigger
	}
}

// readErr turns an io.ReadFull error into the file format's error kinds.
func readErr(err error, what string) error {
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w %s", ErrTruncated, what)
	default:
		return fmt.Errorf("read %s: %w", what, err)
	}
}

// expectEnd reports data after the payload. Reading to the end also makes
// the gzip reader verify its checksum.
func expectEnd(r io.Reader, after string) error {
	var b [1]byte
	m, err := io.ReadFull(r, b[:])
	switch {
	case m > 0:
		return fmt.Errorf("%w after the %s", ErrTrailing, after)
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The gzip trailer (checksum and size) is cut off.
		return fmt.Errorf("%w gzip stream after the %s", ErrTruncated, after)
	case errors.Is(err, ErrTrailing), errors.Is(err, ErrTruncated):
		return err
	default:
		return fmt.Errorf("after the %s: %w", after, err)
	}
}
