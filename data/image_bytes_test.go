package data

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugePNG is a valid 1×1 PNG whose header (checksum fixed up) claims w×h
// pixels: what a decompression bomb looks like before it is decoded.
func hugePNG(t testing.TB, w, h uint32) []byte {
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	// Signature (8), then the IHDR chunk: length (4), "IHDR" (4), width
	// (4), height (4), 5 more bytes, CRC of type and data (4).
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func TestImageBytesToMNIST(t *testing.T) {
	digit := bar(60, 80, 20, 10, 12, 60, color.White, color.RGBA{20, 20, 90, 255})
	pngBytes := encodePNG(t, digit)
	var jpg, gf bytes.Buffer
	if err := jpeg.Encode(&jpg, digit, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&gf, digit, nil); err != nil {
		t.Fatal(err)
	}
	blank := encodePNG(t, bar(40, 40, 0, 0, 0, 0, color.White, color.Black))

	cases := []struct {
		name    string
		in      []byte
		wantErr error  // checked with errors.Is when set
		says    string // in the error when set
	}{
		{name: "png", in: pngBytes},
		{name: "jpeg", in: jpg.Bytes()},
		{name: "gif refused", in: gf.Bytes(), says: "not a PNG or JPEG"},
		{name: "text", in: []byte("hello"), says: "not a PNG or JPEG"},
		{name: "empty", in: nil, says: "not a PNG or JPEG"},
		{name: "truncated png", in: pngBytes[:len(pngBytes)/2], says: "decode"},
		{name: "blank", in: blank, wantErr: ErrBlankImage},
		{name: "huge header", in: hugePNG(t, 50000, 50000), wantErr: ErrImageTooLarge},
		{name: "just over the limit", in: hugePNG(t, 4096, 4097), wantErr: ErrImageTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			px, err := ImageBytesToMNIST(c.in)
			if c.wantErr == nil && c.says == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if len(px) != ImageSize {
					t.Fatalf("%d pixels, want %d", len(px), ImageSize)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("error %v, want %v", err, c.wantErr)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
		})
	}
}

// TestImageBytesMatchesLoadImage: the bytes path and the file path of
// -predict give the same 784 bytes for the same PNG and JPEG.
func TestImageBytesMatchesLoadImage(t *testing.T) {
	img := bar(90, 70, 30, 5, 20, 55, color.RGBA{240, 235, 220, 255}, color.Black)
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"a.png": encodePNG(t, img), "a.jpg": jpg.Bytes()} {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want, err := LoadImage(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ImageBytesToMNIST(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: ImageBytesToMNIST and LoadImage differ", name)
		}
	}
}
