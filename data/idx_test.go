package data

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadImages(t *testing.T) {
	valid := images(2, 3, 4, 7)
	validGz := gz(t, valid)
	corruptGz := bytes.Clone(validGz)
	corruptGz[len(corruptGz)-6] ^= 0xff // inside the CRC-32 trailer
	tests := []struct {
		name    string
		in      []byte
		wantErr error  // kind, nil for success
		wantMsg string // substring of the error message
		n       int
	}{
		{name: "raw", in: valid, n: 2},
		{name: "gzip", in: validGz, n: 2},
		{name: "no images", in: images(0, 28, 28, 0), n: 0},
		{name: "empty", in: nil, wantErr: ErrEmpty},
		{name: "gzip of nothing", in: gz(t, nil), wantErr: ErrEmpty},
		{name: "one byte", in: []byte{0}, wantErr: ErrTruncated, wantMsg: "header"},
		{name: "header cut in magic", in: valid[:3], wantErr: ErrTruncated, wantMsg: "header"},
		{name: "header cut in dims", in: valid[:10], wantErr: ErrTruncated, wantMsg: "header"},
		{name: "not IDX", in: []byte("hello, world, this is text"), wantErr: ErrMagic, wantMsg: "not an IDX file"},
		{name: "float IDX", in: idxFile(0x00000d03, []uint32{1, 1, 1}, make([]byte, 4)), wantErr: ErrMagic, wantMsg: "data type 0x0d"},
		{name: "label file", in: labels(1, 2), wantErr: ErrDims, wantMsg: "a label file?"},
		{name: "4 dims", in: idxFile(0x00000804, []uint32{1, 1, 1, 1}, []byte{0}), wantErr: ErrDims},
		{name: "too many images", in: idxFile(magicImages, []uint32{maxItems + 1, 1, 1}, nil), wantErr: ErrSize},
		{name: "zero rows", in: idxFile(magicImages, []uint32{1, 0, 28}, nil), wantErr: ErrSize},
		{name: "too wide", in: idxFile(magicImages, []uint32{1, 28, maxSide + 1}, nil), wantErr: ErrSize},
		{name: "max header", in: idxFile(magicImages, []uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil), wantErr: ErrSize},
		{name: "product too big", in: idxFile(magicImages, []uint32{maxItems, maxSide, maxSide}, nil), wantErr: ErrSize, wantMsg: "limit"},
		{name: "payload cut", in: valid[:len(valid)-1], wantErr: ErrTruncated, wantMsg: "23 of 24 bytes"},
		{name: "payload missing", in: valid[:16], wantErr: ErrTruncated, wantMsg: "0 of 24 bytes"},
		{name: "gzip cut", in: validGz[:len(validGz)/2], wantErr: ErrTruncated},
		{name: "gzip cut in header", in: validGz[:5], wantErr: ErrTruncated, wantMsg: "gzip header"},
		{name: "gzip magic then junk", in: []byte{0x1f, 0x8b, 'j', 'u', 'n', 'k', 0, 0, 0, 0, 0, 0}, wantMsg: "gzip"},
		{name: "gzip bad checksum", in: corruptGz, wantMsg: "checksum"},
		{name: "gzip of garbage", in: gz(t, []byte("garbage garbage garbage")), wantErr: ErrMagic},
		{name: "trailing raw", in: cat(valid, []byte{1}), wantErr: ErrTrailing},
		{name: "trailing inside gzip", in: gz(t, cat(valid, []byte{1})), wantErr: ErrTrailing},
		{name: "junk after gzip stream", in: cat(validGz, []byte("junk")), wantErr: ErrTrailing},
		{name: "two gzip members", in: cat(gz(t, valid[:10]), gz(t, valid[10:])), n: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px, n, rows, cols, err := ReadImages(bytes.NewReader(tt.in))
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if n != tt.n || len(px) != n*rows*cols {
					t.Fatalf("got n=%d %dx%d with %d pixels, want n=%d", n, rows, cols, len(px), tt.n)
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.wantMsg)
			if px != nil {
				t.Errorf("pixels returned with an error")
			}
		})
	}
}

func TestReadImagesPixels(t *testing.T) {
	px, n, rows, cols, err := ReadImages(bytes.NewReader(gz(t, images(2, 3, 4, 7))))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || rows != 3 || cols != 4 {
		t.Fatalf("got %d %dx%d", n, rows, cols)
	}
	for i, p := range px {
		if p != byte(7+i) {
			t.Fatalf("pixel %d = %d, want %d", i, p, 7+i)
		}
	}
}

// A header may promise far more than the file holds; the reader must not
// allocate what it promises before the bytes arrive.
func TestReadImagesDoesNotTrustHeader(t *testing.T) {
	in := idxFile(magicImages, []uint32{1_000_000, 28, 28}, make([]byte, 100)) // promises 784 MB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, _, _, err := ReadImages(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	checkErr(t, err, ErrTruncated, "100 of 784000000 bytes")
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("allocated %d bytes for a 116-byte file", got)
	}
}

// Readers that return data in odd chunks or fail must behave the same.
func TestReadImagesReaders(t *testing.T) {
	valid := gz(t, images(3, 28, 28, 1))
	if _, n, _, _, err := ReadImages(iotest.OneByteReader(bytes.NewReader(valid))); err != nil || n != 3 {
		t.Errorf("one byte at a time: n=%d err=%v", n, err)
	}
	if _, n, _, _, err := ReadImages(iotest.DataErrReader(bytes.NewReader(valid))); err != nil || n != 3 {
		t.Errorf("data with EOF: n=%d err=%v", n, err)
	}
	boom := errors.New("disk on fire")
	_, _, _, _, err := ReadImages(io.MultiReader(bytes.NewReader(images(3, 28, 28, 1)[:100]), iotest.ErrReader(boom)))
	checkErr(t, err, boom, "disk on fire")
	_, _, _, _, err = ReadImages(iotest.ErrReader(boom))
	checkErr(t, err, boom, "read")
}

func TestReadLabels(t *testing.T) {
	valid := labels(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	tests := []struct {
		name    string
		in      []byte
		wantErr error
		wantMsg string
		n       int
	}{
		{name: "raw", in: valid, n: 10},
		{name: "gzip", in: gz(t, valid), n: 10},
		{name: "none", in: labels(), n: 0},
		{name: "empty", in: nil, wantErr: ErrEmpty},
		{name: "header cut", in: valid[:6], wantErr: ErrTruncated, wantMsg: "header"},
		{name: "bad magic", in: []byte("PK\x03\x04zip file here"), wantErr: ErrMagic},
		{name: "image file", in: images(1, 2, 2, 0), wantErr: ErrDims, wantMsg: "an image file?"},
		{name: "label 10", in: labels(1, 10, 2), wantErr: ErrLabel, wantMsg: "label 10 at index 1"},
		{name: "label 255 gz", in: gz(t, labels(255)), wantErr: ErrLabel},
		{name: "too many", in: idxFile(magicLabels, []uint32{maxItems + 1}, nil), wantErr: ErrSize},
		{name: "payload cut", in: valid[:len(valid)-3], wantErr: ErrTruncated, wantMsg: "7 of 10 bytes"},
		{name: "gzip cut", in: gz(t, valid)[:20], wantErr: ErrTruncated},
		{name: "trailing", in: cat(valid, []byte{0}), wantErr: ErrTrailing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadLabels(bytes.NewReader(tt.in))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if len(got) != tt.n {
					t.Fatalf("got %d labels, want %d", len(got), tt.n)
				}
				for i, l := range got {
					if l != byte(i) {
						t.Fatalf("label %d = %d", i, l)
					}
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.wantMsg)
		})
	}
}

// checkErr checks an error's kind (if want is not nil) and message, and that
// it is one line.
func checkErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v %q", want, msg)
	}
	t.Log(err)
	if want != nil && !errors.Is(err, want) {
		t.Errorf("error %q is not %q", err, want)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}

func TestReadImagesGzipEnd(t *testing.T) {
	validGz := gz(t, images(1, 2, 2, 0))
	// The trailer is the last 8 bytes: CRC-32 and size.
	_, _, _, _, err := ReadImages(bytes.NewReader(validGz[:len(validGz)-3]))
	checkErr(t, err, ErrTruncated, "gzip")
	_, _, _, _, err = ReadImages(bytes.NewReader(cat(validGz, []byte{0x1f})))
	checkErr(t, err, ErrTrailing, "after the gzip stream")
	_, _, _, _, err = ReadImages(bytes.NewReader(cat(validGz, []byte{0x1f, 0x8b, 8})))
	checkErr(t, err, ErrTruncated, "gzip header")
	_, _, _, _, err = ReadImages(bytes.NewReader(cat(validGz, []byte{0x1f, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 0})))
	checkErr(t, err, nil, "gzip: invalid header")
	_, _, _, _, err = ReadImages(bytes.NewReader(cat(validGz, gz(t, nil))))
	if err != nil {
		t.Errorf("empty second member: %v", err)
	}
}
