package data

import (
	"image"
	"math/rand/v2"
	"slices"
	"testing"
)

// framed draws a frame t pixels thick at level frame around the w×h grey
// image g, with blur rings between frame and picture at the mean of the
// two levels (a blurred inner edge).
func framed(g []float64, w, h, t, blur int, frame float64) ([]float64, int, int) {
	fw, fh := w+2*(t+blur), h+2*(t+blur)
	out := make([]float64, fw*fh)
	for i := range out {
		out[i] = frame
	}
	inner := g[0] // the picture's paper, at its corner
	for d := t; d < t+blur; d++ {
		for y := d; y < fh-d; y++ {
			for x := d; x < fw-d; x++ {
				out[y*fw+x] = (frame + inner) / 2
			}
		}
	}
	o := t + blur
	for y := range h {
		copy(out[(y+o)*fw+o:(y+o)*fw+o+w], g[y*w:(y+1)*w])
	}
	return out, fw, fh
}

// paperWithBar is a w×h picture of paper at level paper with a bar of ink
// (at level ink) in its middle third, as a 1 is drawn.
func paperWithBar(w, h int, paper, ink float64) []float64 {
	g := make([]float64, w*h)
	for y := range h {
		for x := range w {
			g[y*w+x] = paper
			if x >= w/3 && x < 2*w/3 && y >= h/4 && y < 3*h/4 {
				g[y*w+x] = ink
			}
		}
	}
	return g
}

// trimFrame cuts off a frame of one level around paper of another, blurred
// or noisy, and leaves alone a picture whose edge is its paper, a digit
// cropped close (paper a pixel wide, then ink all the way in) and images
// too small to have a frame.
func TestTrimFrame(t *testing.T) {
	picture := paperWithBar(60, 80, 1, 0)
	noisy := slices.Clone(picture)
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(g []float64) []float64 {
		out := slices.Clone(g)
		for i := range out {
			out[i] = min(max(out[i]+0.03*rng.NormFloat64(), 0), 1)
		}
		return out
	}
	closeOne := paperWithBar(20, 120, 1, 0)
	for y := range 120 { // a pixel of paper each side, ink between
		for x := 1; x < 19; x++ {
			closeOne[y*20+x] = 0
		}
	}
	cases := []struct {
		name    string
		g       []float64
		w, h    int
		trimmed int // rings cut off each side; 0 when left alone
	}{
		{"no frame", picture, 60, 80, 0},
		{"black frame 3 thick", first(framed(picture, 60, 80, 3, 0, 0)), 66, 86, 3},
		{"frame with a blurred inner edge", first(framed(picture, 60, 80, 4, 2, 0.1)), 72, 92, 6},
		{"noisy frame and paper", noise(first(framed(noisy, 60, 80, 3, 1, 0))), 68, 88, 4},
		{"white frame around chalk on a board", first(framed(paperWithBar(60, 80, 0.05, 0.95), 60, 80, 5, 0, 1)), 70, 90, 5},
		{"frame as light as the paper", first(framed(picture, 60, 80, 3, 0, 0.8)), 66, 86, 0},
		{"a 1 cropped close", closeOne, 20, 120, 0},
		{"1×1", []float64{0.5}, 1, 1, 0},
		{"3×2", []float64{0, 0, 0, 1, 1, 1}, 3, 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, w, h := trimFrame(c.g, c.w, c.h)
			if w != c.w-2*c.trimmed || h != c.h-2*c.trimmed || len(got) != w*h {
				t.Fatalf("%d×%d → %d×%d (%d values), want %d rings cut off", c.w, c.h, w, h, len(got), c.trimmed)
			}
			for y := range h {
				if !slices.Equal(got[y*w:(y+1)*w], c.g[(y+c.trimmed)*c.w+c.trimmed:(y+c.trimmed)*c.w+c.trimmed+w]) {
					t.Fatalf("row %d is not the picture's", y)
				}
			}
		})
	}
}

func first(g []float64, _, _ int) []float64 { return g }

// A digit in a box, as scanned from a form, reads as the same digit out of
// it. (Taken for background, the box made the paper ink: the picture read
// as blank, or a blot.)
func TestImageToMNISTFramedDigit(t *testing.T) {
	const size, t0 = 160, 4
	photo := photograph(drawDigit(four, size), size, func(u, v float64) float64 { return 1 }, 0, 1)
	want, err := ImageToMNIST(photo)
	if err != nil {
		t.Fatal(err)
	}
	box := image.NewGray(image.Rect(0, 0, size+2*t0, size+2*t0))
	for i := range box.Pix {
		box.Pix[i] = 20
	}
	for y := range size {
		copy(box.Pix[(y+t0)*box.Stride+t0:], photo.Pix[y*photo.Stride:y*photo.Stride+size])
	}
	got, err := ImageToMNIST(box)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the boxed digit reads differently from the digit: correlation %.3f", correlation(got, want))
	}
}
