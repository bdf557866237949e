package data

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What LoadImage and ImageToMNIST say about files they cannot use, each
// case found by the mutation pass (scripts/mutate) as a change the other
// tests let pass: the error must keep its cause and kind, not merely exist.
func TestLoadImageErrorKinds(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var blank bytes.Buffer
	white := image.NewGray(image.Rect(0, 0, 40, 40))
	for i := range white.Pix {
		white.Pix[i] = 255
	}
	if err := png.Encode(&blank, white); err != nil {
		t.Fatal(err)
	}
	var cut bytes.Buffer
	if err := png.Encode(&cut, bar(40, 40, 10, 10, 10, 20, color.White, color.Black)); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		path string
		kind error  // errors.Is, when not nil
		want string // in the message
	}{
		{"missing", filepath.Join(dir, "none.png"), fs.ErrNotExist, "none.png"},
		{"not an image", write("notes.png", []byte("just some text, no picture")), nil, "not a PNG or JPEG image"},
		{"truncated PNG", write("cut.png", cut.Bytes()[:cut.Len()/2]), nil, "decode:"},
		{"blank", write("blank.png", blank.Bytes()), ErrBlankImage, "blank.png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px, err := LoadImage(context.Background(), tt.path)
			if err == nil || px != nil {
				t.Fatalf("LoadImage = %d pixels, %v; want an error", len(px), err)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not say %q and name %s", err, tt.want, tt.path)
			}
		})
	}
}

// An image without pixels is refused as empty, not as blank: there is
// nothing to look at, which is a different mistake from a white page.
func TestImageToMNISTEmptyIsNotBlank(t *testing.T) {
	for _, r := range []image.Rectangle{image.Rect(0, 0, 0, 5), image.Rect(0, 0, 5, 0), image.Rect(3, 3, 3, 3)} {
		_, err := ImageToMNIST(image.NewGray(r))
		if err == nil || errors.Is(err, ErrBlankImage) || !strings.Contains(err.Error(), "empty image") {
			t.Errorf("%v: %v, want an empty-image error", r, err)
		}
	}
}
