package data

import (
	"bytes"
	"errors"
	"testing"
)

// Edges of gzip detection found by the mutation pass (scripts/mutate):
// only the two-byte magic 1f 8b means gzip, whichever byte of it is
// missing, at the start of a file or after a member; and a file of one
// byte is too short for either format.
func TestGzipMagicEdges(t *testing.T) {
	img := images(2, 3, 2, 7)
	g := gz(t, img)
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"one byte 1f", []byte{0x1f}, ErrTruncated},
		{"one byte 8b", []byte{0x8b}, ErrTruncated},
		{"raw starting 1f 00", cat([]byte{0x1f, 0x00}, img[2:]), ErrMagic},
		{"raw starting 00 8b", cat([]byte{0x00, 0x8b}, img[2:]), ErrMagic},
		{"member then 1f 00", cat(g, []byte{0x1f, 0x00}), ErrTrailing},
		{"member then 00 8b", cat(g, []byte{0x00, 0x8b}), ErrTrailing},
		{"two members then garbage", cat(gz(t, img[:10]), gz(t, img[10:]), []byte("xy")), ErrTrailing},
		{"three members then garbage", cat(gz(t, img[:5]), gz(t, img[5:10]), gz(t, img[10:]), []byte("xy")), ErrTrailing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px, _, _, _, err := ReadImages(bytes.NewReader(tt.file))
			if !errors.Is(err, tt.want) || px != nil {
				t.Errorf("ReadImages = %d pixels, %v; want %v", len(px), err, tt.want)
			}
		})
	}
	// The same members without the garbage are one valid file.
	px, n, _, _, err := ReadImages(bytes.NewReader(cat(gz(t, img[:5]), gz(t, img[5:10]), gz(t, img[10:]))))
	if err != nil || n != 2 || len(px) != 12 {
		t.Errorf("three members: %d images, %d pixels, %v", n, len(px), err)
	}
}
