package data

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
		verb string // the message starts "image: cannot VERB PATH: "
		want string // in the message
	}{
		{"missing", filepath.Join(dir, "none.png"), fs.ErrNotExist, "read", "no such file"},
		{"not an image", write("notes.png", []byte("just some text, no picture")), nil, "decode", "not a PNG or JPEG image"},
		{"truncated PNG", write("cut.png", cut.Bytes()[:cut.Len()/2]), nil, "decode", "decode:"},
		{"blank", write("blank.png", blank.Bytes()), ErrBlankImage, "decode", "blank"},
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
			prefix := "image: cannot " + tt.verb + " " + tt.path + ": "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not start %q and say %q", err, prefix, tt.want)
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

// failingReadSeeker fails every read with its error.
type failingReadSeeker struct{ err error }

func (r failingReadSeeker) Read([]byte) (int, error)       { return 0, r.err }
func (r failingReadSeeker) Seek(int64, int) (int64, error) { return 0, nil }

// zeroHeightJPEG is a valid 3×2 JPEG whose frame header then says 0 rows:
// image/jpeg's DecodeConfig returns it as 3×0 without an error.
func zeroHeightJPEG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 3, 2)), nil); err != nil {
		t.Fatal(err)
	}
	j := b.Bytes()
	for i := 0; i+6 < len(j); i++ {
		if j[i] == 0xff && j[i+1] == 0xc0 { // start of frame: length, precision, height
			j[i+5], j[i+6] = 0, 0
			return j
		}
	}
	t.Fatal("no SOF0 marker in the JPEG")
	return nil
}

// DecodeImage keeps the cause of what it cannot read, and refuses a header
// whose size no image has before it divides by it.
func TestDecodeImageErrorCauses(t *testing.T) {
	broken := errors.New("disk on fire")
	for _, c := range []struct {
		name string
		r    io.ReadSeeker
		is   error  // the cause errors.Is must find, or nil
		want string // the error's text
	}{
		{"read fails", failingReadSeeker{broken}, broken, "read: disk on fire"},
		{"PNG header cut off", bytes.NewReader([]byte(pngMagic + "IHDR")), io.ErrUnexpectedEOF, "decode: unexpected EOF"},
		{"JPEG of no rows", bytes.NewReader(zeroHeightJPEG(t)), nil, "decode: the header gives a size of 3×0 pixels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, err := DecodeImage(c.r)
			if err == nil || img != nil {
				t.Fatalf("DecodeImage = %v, %v; want an error", img, err)
			}
			if err.Error() != c.want || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("error %q (cause kept: %v), want %q", err, errors.Is(err, c.is), c.want)
			}
		})
	}
}

// ImageToMNIST refuses what has no pixels or too many from the image's
// bounds alone, before it allocates for them: image.Uniform is 2e9 pixels
// on a side.
func TestImageToMNISTRefusesBounds(t *testing.T) {
	if _, err := ImageToMNIST(nil); err == nil || err.Error() != "empty image (no pixels)" {
		t.Errorf("ImageToMNIST(nil) = %v", err)
	}
	_, err := ImageToMNIST(image.NewUniform(color.White))
	if !errors.Is(err, ErrImageTooLarge) || !strings.Contains(err.Error(), "2000000000×2000000000 pixels") {
		t.Errorf("ImageToMNIST(a uniform image of unbounded size) = %v", err)
	}
}

// A paletted image whose pixel slice is shorter than its bounds (no
// decoder makes one, but an image.Image may be anything) reads as 0 where
// it has no pixel, rather than past the slice's end.
func TestGreyLevelsShortPalettedPixels(t *testing.T) {
	img := &image.Paletted{Pix: []byte{1}, Stride: 2, Rect: image.Rect(0, 0, 2, 2), Palette: color.Palette{color.Black, color.White}}
	got := greyLevels(img)
	if want := []float64{1, 0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("greyLevels = %v, want %v", got, want)
	}
}
