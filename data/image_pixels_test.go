package data

import (
	"image"
	"testing"
)

// Exact results of the preparation of users' images, with every expected
// pixel worked out by hand in the comments. TestImageToMNIST checks where
// the digit lands; these check the arithmetic on the way (the stretch
// against grey paper, the centre of mass, the clamp into the frame), which
// the mutation pass (scripts/mutate) found unpinned.

// greyCanvas is a w×h image of one grey level, with set(x, y, v) to draw.
func greyCanvas(w, h int, paper uint8) (*image.Gray, func(x, y int, v uint8)) {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = paper
	}
	return img, func(x, y int, v uint8) { img.Pix[y*img.Stride+x] = v }
}

// want28 is a 28×28 result with the given pixels set.
func want28(set func(put func(x, y int, v byte))) []byte {
	out := make([]byte, ImageSize)
	set(func(x, y int, v byte) { out[y*ImageCols+x] = v })
	return out
}

func assertPixels(t *testing.T, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d pixels, want %d", len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad < 5 {
				t.Errorf("pixel (%d, %d) = %d, want %d", i%ImageCols, i/ImageCols, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d pixels differ", bad)
	}
}

// Grey paper (51 = 0.2) is the background: it becomes 0, and the rest is
// stretched by 1/(1-0.2). A 10×20 block, its left 3 columns white (1.0),
// the other 7 grey 102 (0.4 → (0.4-0.2)/0.8 = 0.25 → 63.75 → 64). The box
// is 10×20, so the scale is 1. Centre of mass across: per row, mass
// 3 + 7·0.25 = 4.75 and moment 0.5+1.5+2.5 + 0.25·(3.5+…+9.5) = 4.5 +
// 11.375 = 15.875, so x̄ = 3.342 and the block starts at
// round(14 - 3.342) = 11 (not 9, where the box centre would put it);
// down, the rows are alike: ȳ = 10, start round(14 - 10) = 4.
func TestImageToMNISTGreyPaperExact(t *testing.T) {
	img, set := greyCanvas(40, 40, 51)
	for y := 5; y < 25; y++ {
		for x := 10; x < 20; x++ {
			v := uint8(102)
			if x < 13 {
				v = 255
			}
			set(x, y, v)
		}
	}
	got, err := ImageToMNIST(img)
	if err != nil {
		t.Fatal(err)
	}
	assertPixels(t, got, want28(func(put func(x, y int, v byte)) {
		for y := 4; y < 24; y++ {
			for x := 11; x < 21; x++ {
				v := byte(64)
				if x < 14 {
					v = 255
				}
				put(x, y, v)
			}
		}
	}))
}

// A one-pixel "Γ" (top row 20 long, left column 20 high) has its centre
// of mass near its corner: mass 39, moment across 0.5+…+19.5 = 200 plus
// 19·0.5, so x̄ = 209.5/39 = 5.37, and likewise ȳ. Centring it would start
// it at round(14 - 5.37) = 9 and cut its last pixel off the 28-pixel
// frame; it is shifted back to start at 28 - 20 = 8, both ways.
func TestImageToMNISTClampsIntoFrame(t *testing.T) {
	img, set := greyCanvas(30, 30, 0)
	for i := 0; i < 20; i++ {
		set(5+i, 5, 255)
		set(5, 5+i, 255)
	}
	got, err := ImageToMNIST(img)
	if err != nil {
		t.Fatal(err)
	}
	assertPixels(t, got, want28(func(put func(x, y int, v byte)) {
		for i := 0; i < 20; i++ {
			put(8+i, 8, 255)
			put(8, 8+i, 255)
		}
	}))
}

// areaResize weighs each source pixel by the fraction of it an output
// pixel covers. 3×3 → 2×2: each output covers 1.5 pixels each way, one
// whole and one half, so with g(x, y) = 3x + 9y the top-left output is
// (1·1·0 + ½·1·3 + 1·½·9 + ½·½·12) / 1.5² = 9/2.25 = 4, and so on. The
// 3×3 sits at (1, 1) of a 5-wide buffer whose other values must not leak
// in.
func TestAreaResize(t *testing.T) {
	g := make([]float64, 25)
	for i := range g {
		g[i] = 99
	}
	for y := 0; y < 3; y++ {
		for x := 0; x < 3; x++ {
			g[(1+y)*5+1+x] = float64(3*x + 9*y)
		}
	}
	got := areaResize(g, 5, 1, 1, 3, 3, 2, 2)
	want := []float64{4, 8, 16, 20}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("3×3 → 2×2: %v, want %v", got, want)
			break
		}
	}
	// Upscaling 2 → 3 across: the middle output covers a third of each.
	got = areaResize([]float64{0, 6}, 2, 0, 0, 2, 1, 3, 1)
	for i, w := range []float64{0, 3, 6} {
		if d := got[i] - w; d > 1e-12 || d < -1e-12 {
			t.Errorf("2 → 3: %v, want [0 3 6]", got)
			break
		}
	}
	// The same down a column.
	got = areaResize([]float64{0, 3, 6}, 1, 0, 0, 1, 3, 1, 2)
	if got[0] != 1 || got[1] != 5 {
		t.Errorf("column 3 → 2: %v, want [1 5]", got)
	}
}

// inkBox is the half-open box of the pixels strictly above the threshold
// that have an inked neighbour: a lone speck does not stretch it.
func TestInkBox(t *testing.T) {
	g := []float64{
		0, 0.5, 0, 0, 0,
		0, 0.5, 0, inkThreshold, 0, // at the threshold: not ink
		0, 0, 0.2, 0, 0,
		0, 0, 0, 0, 0.9, // a lone speck: not ink
	}
	x0, y0, x1, y1, ok := inkBox(g, 5, 4)
	if !ok || x0 != 1 || y0 != 0 || x1 != 3 || y1 != 3 {
		t.Errorf("inkBox = [%d,%d)×[%d,%d) %v, want [1,3)×[0,3) true", x0, x1, y0, y1, ok)
	}
	if _, _, _, _, ok := inkBox(make([]float64, 12), 4, 3); ok {
		t.Error("inkBox found ink in a blank image")
	}
}
