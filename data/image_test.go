package data

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// bar draws a filled w×h rectangle at (x, y) in ink on a W×H canvas of paper.
func bar(W, H, x, y, w, h int, paper, ink color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for py := range H {
		for px := range W {
			c := paper
			if px >= x && px < x+w && py >= y && py < y+h {
				c = ink
			}
			img.Set(px, py, c)
		}
	}
	return img
}

// twoLines draws two 1-pixel-wide, 200-pixel-high white lines 200 pixels
// apart on black.
func twoLines() *image.Gray {
	img := image.NewGray(image.Rect(0, 0, 220, 220))
	for y := 10; y < 210; y++ {
		img.Pix[y*img.Stride+10] = 255
		img.Pix[y*img.Stride+210] = 255
	}
	return img
}

// box is the bounding box of the non-zero pixels of a 28×28 result.
func box(px []byte) (x0, y0, x1, y1 int) {
	x0, y0 = ImageCols, ImageRows
	for i, v := range px {
		if v > 0 {
			x, y := i%ImageCols, i/ImageCols
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x+1), max(y1, y+1)
		}
	}
	return
}

func TestImageToMNIST(t *testing.T) {
	black, white := color.Gray{0}, color.Gray{255}
	red := color.RGBA{255, 0, 0, 255}
	cases := []struct {
		name string
		img  image.Image
		// Expected bounding box of the ink in the 28×28 result, and the
		// value of its brightest pixel.
		x0, y0, x1, y1 int
		peak           byte
	}{
		// A tall bar fills the 20-pixel height; its width scales by the
		// same factor (12×40 → 6×20), so the aspect is kept, and the
		// centre of mass lands at (14, 14). (Sizes are chosen so that the
		// centre of mass never falls exactly half-way between pixels,
		// where float round-off would decide the side.)
		{"white on black", bar(60, 60, 20, 10, 12, 40, black, white), 11, 4, 17, 24, 255},
		// The same as dark on light: inverted, identical result.
		{"black on white", bar(60, 60, 20, 10, 12, 40, white, black), 11, 4, 17, 24, 255},
		// Colour: pure red on white has luminance 0.299, so after
		// inverting the ink is 0.701 of full white.
		{"red on white", bar(60, 60, 20, 10, 12, 40, white, red), 11, 4, 17, 24, 179},
		// A wide bar in a 300×50 picture: 200×20 → 20×2, centred.
		{"300x50 wide", bar(300, 50, 50, 15, 200, 20, white, black), 4, 13, 24, 15, 255},
		// Off-centre in the source: centring ignores where it was.
		{"off-centre", bar(100, 100, 5, 70, 20, 20, black, white), 4, 4, 24, 24, 255},
		// Smaller than 20 pixels: scaled up to 20 (pixels repeated).
		{"tiny digit", bar(10, 10, 4, 3, 2, 4, black, white), 9, 4, 19, 24, 255},
		// Two 1-pixel strokes 200 pixels apart, scaled by 20/201: area
		// averaging keeps each as a faint column (about 1/10 of full ink,
		// 25) instead of dropping it between samples.
		{"thin strokes", twoLines(), 4, 4, 24, 24, 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			px, err := ImageToMNIST(c.img)
			if err != nil {
				t.Fatal(err)
			}
			if len(px) != ImageSize {
				t.Fatalf("%d pixels, want %d", len(px), ImageSize)
			}
			x0, y0, x1, y1 := box(px)
			if x0 != c.x0 || y0 != c.y0 || x1 != c.x1 || y1 != c.y1 {
				t.Errorf("ink box [%d,%d)×[%d,%d), want [%d,%d)×[%d,%d)", x0, x1, y0, y1, c.x0, c.x1, c.y0, c.y1)
			}
			var peak byte
			for _, v := range px {
				peak = max(peak, v)
			}
			if peak != c.peak {
				t.Errorf("brightest pixel %d, want %d", peak, c.peak)
			}
		})
	}
}

func TestImageToMNISTRefusesEmptyAndBlank(t *testing.T) {
	for name, img := range map[string]image.Image{
		"0x0":         image.NewGray(image.Rect(0, 0, 0, 0)),
		"0x5":         image.NewGray(image.Rect(0, 0, 0, 5)),
		"1x1":         image.NewGray(image.Rect(0, 0, 1, 1)), // all border: nothing stands out
		"white 40x40": bar(40, 40, 0, 0, 0, 0, color.White, color.Black),
		"black 40x40": bar(40, 40, 0, 0, 0, 0, color.Black, color.White),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ImageToMNIST(img); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := ImageToMNIST(image.NewGray(image.Rect(0, 0, 1, 1))); !errors.Is(err, ErrBlankImage) {
		t.Errorf("1x1: %v, want ErrBlankImage", err)
	}
}

// TestLoadImagesFormats decodes a PNG and a JPEG of the same drawing: both
// give a digit in the same place (JPEG's ringing stays under the threshold).
func TestLoadImagesFormats(t *testing.T) {
	dir := t.TempDir()
	img := bar(90, 90, 30, 15, 20, 60, color.White, color.Black)
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.png")
	j := filepath.Join(dir, "a.jpg")
	for path, b := range map[string][]byte{p: pngBuf.Bytes(), j: jpgBuf.Bytes()} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := LoadImages(context.Background(), []string{p, j})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || len(s.Images) != 2*ImageSize {
		t.Fatalf("set of %d images, %d pixels", s.Len(), len(s.Images))
	}
	// JPEG's ringing and blur widen the ink box by a pixel or so, which
	// changes the scale a little: compare boxes within a pixel and the
	// total ink within 20%.
	a, b := s.Images[:ImageSize], s.Images[ImageSize:]
	ab, bb := [4]int{}, [4]int{}
	ab[0], ab[1], ab[2], ab[3] = box(a)
	bb[0], bb[1], bb[2], bb[3] = box(b)
	for i := range ab {
		if d := ab[i] - bb[i]; d > 1 || d < -1 {
			t.Errorf("PNG ink box %v, JPEG %v: more than a pixel apart", ab, bb)
			break
		}
	}
	var sa, sb int
	for i := range a {
		sa, sb = sa+int(a[i]), sb+int(b[i])
	}
	if r := float64(sb) / float64(sa); r < 0.8 || r > 1.2 {
		t.Errorf("JPEG ink %d, PNG %d", sb, sa)
	}

	if _, err := LoadImages(context.Background(), []string{p, filepath.Join(dir, "none.png")}); err == nil || !strings.Contains(err.Error(), "none.png") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}

// strokeOnCanvas draws a 4×24-pixel stroke in ink on a 40×40 canvas of
// paper, as NRGBA (not premultiplied: a transparent pixel may keep a colour).
func strokeOnCanvas(paper, ink color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			c := paper
			if x >= 18 && x < 22 && y >= 8 && y < 32 {
				c = ink
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// A digit drawn on a transparent canvas is read whatever its ink's colour:
// white strokes, as a dark-theme drawing app exports them, give what black
// ones give and what white strokes on black give. (Over white paper alone,
// white strokes vanished and the picture was refused as blank.) Where the
// border is opaque, transparent pixels stay white paper.
func TestTransparentCanvas(t *testing.T) {
	clear, clearWhite := color.NRGBA{}, color.NRGBA{255, 255, 255, 0}
	black, white := color.NRGBA{0, 0, 0, 255}, color.NRGBA{255, 255, 255, 255}
	want, err := ImageToMNIST(strokeOnCanvas(black, white))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		img   image.Image
		under float64 // transparentLevel's answer
	}{
		{"white on black, opaque", strokeOnCanvas(black, white), 1},
		{"black on transparent", strokeOnCanvas(clear, black), 1},
		{"white on transparent", strokeOnCanvas(clear, white), 0},
		{"white on transparent white", strokeOnCanvas(clearWhite, white), 0},
		{"half-transparent white on transparent", strokeOnCanvas(clear, color.NRGBA{255, 255, 255, 128}), 0},
		{"black on white with a transparent hole", strokeOnCanvas(white, clear), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := transparentLevel(c.img); got != c.under {
				t.Errorf("transparentLevel = %v, want %v", got, c.under)
			}
			if c.name == "black on white with a transparent hole" {
				// The hole is white paper: nothing to read.
				if _, err := ImageToMNIST(c.img); !errors.Is(err, ErrBlankImage) {
					t.Errorf("ImageToMNIST = %v, want ErrBlankImage", err)
				}
				return
			}
			got, err := ImageToMNIST(c.img)
			if err != nil {
				t.Fatal(err)
			}
			if x0, y0, x1, y1 := box(got); x1-x0 < 1 || y1-y0 != 20 {
				t.Fatalf("ink box [%d,%d)×[%d,%d), want the 20-pixel stroke", x0, x1, y0, y1)
			}
			if c.name != "half-transparent white on transparent" && !slices.Equal(got, want) {
				t.Errorf("differs from white on black")
			}
		})
	}
	// Nothing opaque at all: white paper, and blank.
	if got := transparentLevel(image.NewNRGBA(image.Rect(0, 0, 5, 5))); got != 1 {
		t.Errorf("transparentLevel(fully transparent) = %v, want 1", got)
	}
}
