package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// TestOrient: each EXIF orientation shows a 3×2 image, stored inside a
// larger one so that its bounds do not start at (0, 0), as a viewer does.
func TestOrient(t *testing.T) {
	whole := image.NewGray(image.Rect(0, 0, 10, 10))
	for i := range whole.Pix {
		whole.Pix[i] = 99
	}
	stored := whole.SubImage(image.Rect(4, 6, 7, 8)).(*image.Gray)
	copy(stored.Pix[stored.PixOffset(4, 6):], []byte{1, 2, 3})
	copy(stored.Pix[stored.PixOffset(4, 7):], []byte{4, 5, 6})
	cases := []struct {
		o    int
		want [][]byte // rows as displayed
	}{
		{1, [][]byte{{1, 2, 3}, {4, 5, 6}}},
		{2, [][]byte{{3, 2, 1}, {6, 5, 4}}},
		{3, [][]byte{{6, 5, 4}, {3, 2, 1}}},
		{4, [][]byte{{4, 5, 6}, {1, 2, 3}}},
		{5, [][]byte{{1, 4}, {2, 5}, {3, 6}}},
		{6, [][]byte{{4, 1}, {5, 2}, {6, 3}}},
		{7, [][]byte{{6, 3}, {5, 2}, {4, 1}}},
		{8, [][]byte{{3, 6}, {2, 5}, {1, 4}}},
		{0, [][]byte{{1, 2, 3}, {4, 5, 6}}},
		{9, [][]byte{{1, 2, 3}, {4, 5, 6}}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.o), func(t *testing.T) {
			img := orient(stored, c.o)
			b := img.Bounds()
			if b.Dx() != len(c.want[0]) || b.Dy() != len(c.want) {
				t.Fatalf("bounds %v, want %d×%d", b, len(c.want[0]), len(c.want))
			}
			for y, row := range c.want {
				for x, want := range row {
					if got := color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y; got != want {
						t.Errorf("pixel (%d, %d) = %d, want %d", x, y, got, want)
					}
				}
			}
			if img.ColorModel() != color.GrayModel {
				t.Errorf("colour model %v, want the stored image's", img.ColorModel())
			}
		})
	}
}

// TestOrientOpaque: an oriented image is opaque when the stored one is,
// so that ImageToMNIST skips its scan of each pixel's alpha, and not when
// the stored one has transparency.
func TestOrientOpaque(t *testing.T) {
	clear := image.NewNRGBA(image.Rect(0, 0, 2, 3))
	for _, c := range []struct {
		img  image.Image
		want bool
	}{
		{image.NewYCbCr(image.Rect(0, 0, 2, 3), image.YCbCrSubsampleRatio420), true},
		{image.NewGray(image.Rect(0, 0, 2, 3)), true},
		{clear, false},
	} {
		o, ok := orient(c.img, 6).(interface{ Opaque() bool })
		if !ok || o.Opaque() != c.want {
			t.Errorf("%T: opaque %v, want %v", c.img, ok && o.Opaque(), c.want)
		}
	}
}

// drawF is an upright "F" of dark strokes on light paper, w×h: it differs
// from its every mirror image and rotation.
func drawF(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			stem := x >= w/5 && x < w/5+w/7 && y >= h/6 && y < h-h/6
			top := y >= h/6 && y < h/6+h/10 && x >= w/5 && x < w-w/5
			middle := y >= h/2-h/20 && y < h/2+h/20 && x >= w/5 && x < w-w/3
			img.Pix[y*w+x] = 235
			if stem || top || middle {
				img.Pix[y*w+x] = 20
			}
		}
	}
	return img
}

// storedAs is the image a camera stores with EXIF orientation o for the
// upright picture up: the pixel stored at (sx, sy) is the one displayed at
// the position given here, for each orientation's transform.
func storedAs(up *image.Gray, o int) *image.Gray {
	w, h := up.Bounds().Dx(), up.Bounds().Dy()
	sw, sh := w, h
	if o >= 5 {
		sw, sh = h, w
	}
	displayed := map[int]func(sx, sy int) (int, int){
		1: func(sx, sy int) (int, int) { return sx, sy },
		2: func(sx, sy int) (int, int) { return w - 1 - sx, sy },
		3: func(sx, sy int) (int, int) { return w - 1 - sx, h - 1 - sy },
		4: func(sx, sy int) (int, int) { return sx, h - 1 - sy },
		5: func(sx, sy int) (int, int) { return sy, sx },
		6: func(sx, sy int) (int, int) { return w - 1 - sy, sx }, // stored turned 90° counter-clockwise
		7: func(sx, sy int) (int, int) { return w - 1 - sy, h - 1 - sx },
		8: func(sx, sy int) (int, int) { return sy, h - 1 - sx }, // stored turned 90° clockwise
	}[o]
	s := image.NewGray(image.Rect(0, 0, sw, sh))
	for sy := 0; sy < sh; sy++ {
		for sx := 0; sx < sw; sx++ {
			x, y := displayed(sx, sy)
			s.Pix[sy*sw+sx] = up.Pix[y*w+x]
		}
	}
	return s
}

// jpegWithOrientation encodes img as a JPEG with an EXIF block saying o
// right after its SOI, where cameras write it.
func jpegWithOrientation(t *testing.T, img image.Image, o int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	exif := exifSegment(orientationTIFF(binary.BigEndian, uint16(o)))
	return append(append(append([]byte(nil), b[:2]...), exif...), b[2:]...)
}

// TestImageBytesToMNISTOrientation: a JPEG stored sideways or mirrored,
// with the EXIF orientation that says so, reads as the upright picture
// does, and a damaged EXIF block leaves a JPEG as stored. JPEG is lossy,
// so the 28×28 results are compared by correlation: the upright F against
// any of its mirror images or rotations correlates below 0.6.
func TestImageBytesToMNISTOrientation(t *testing.T) {
	const w, h = 60, 84
	up := drawF(w, h)
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, up, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	want, err := ImageBytesToMNIST(plain.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	damaged := jpegWithOrientation(t, up, 6)
	copy(damaged[bytes.Index(damaged, []byte("MM\x00*")):], "XX")
	files := map[string][]byte{"damaged EXIF": damaged}
	for o := 1; o <= 8; o++ {
		files[fmt.Sprintf("orientation %d", o)] = jpegWithOrientation(t, storedAs(up, o), o)
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			if r := correlation(uprightMNIST(t, file, w, h), want); r < 0.98 {
				t.Errorf("correlation with the upright F %.3f, want ≥ 0.98", r)
			}
		})
	}
}

// uprightMNIST decodes file, an image of a w×h picture stored turned as
// its orientation says, checks that it decodes as w×h, and returns its
// 28×28 MNIST form.
func uprightMNIST(t *testing.T, file []byte, w, h int) []byte {
	t.Helper()
	img, err := DecodeImage(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("decoded as %d×%d, want %d×%d", b.Dx(), b.Dy(), w, h)
	}
	got, err := ImageBytesToMNIST(file)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
