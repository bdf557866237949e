package data

import (
	"math"
	"slices"
	"testing"
)

// The parts of the light correction, each against values worked out by
// hand: the end-to-end tests of image_light_test.go read digits correctly
// through a range of small errors in them.

func TestBorderPixels(t *testing.T) {
	// Pixel i holds i, so the result names the pixels taken.
	img := func(w, h int) []float64 {
		g := make([]float64, w*h)
		for i := range g {
			g[i] = float64(i)
		}
		return g
	}
	for _, c := range []struct {
		w, h int
		want []float64
	}{
		{1, 1, []float64{0}},
		{3, 1, []float64{0, 1, 2}},
		{1, 3, []float64{0, 1, 2}},
		{2, 2, []float64{0, 1, 2, 3}},
		{3, 3, []float64{0, 1, 2, 3, 5, 6, 7, 8}},
		{4, 3, []float64{0, 1, 2, 3, 4, 7, 8, 9, 10, 11}},
		{3, 4, []float64{0, 1, 2, 3, 5, 6, 8, 9, 10, 11}},
		{4, 4, []float64{0, 1, 2, 3, 4, 7, 8, 11, 12, 13, 14, 15}},
	} {
		if got := borderPixels(img(c.w, c.h), c.w, c.h); !slices.Equal(got, c.want) {
			t.Errorf("%d×%d: border %v, want %v", c.w, c.h, got, c.want)
		}
	}
}

func TestInkIsDark(t *testing.T) {
	const w, h = 20, 20
	// fill returns an image of level bg with the pixels listed at their
	// levels.
	fill := func(bg float64, px map[int]float64) []float64 {
		g := make([]float64, w*h)
		for i := range g {
			g[i] = bg
		}
		for i, v := range px {
			g[i] = v
		}
		return g
	}
	// A block of n pixels at level v, inside the border, from pixel at.
	block := func(px map[int]float64, at, n int, v float64) map[int]float64 {
		for i := range n {
			y, x := 1+(at+i)/(w-2), 1+(at+i)%(w-2)
			px[y*w+x] = v
		}
		return px
	}
	for _, c := range []struct {
		name string
		g    []float64
		want bool
	}{
		{"dark ink on white", fill(0.9, block(map[int]float64{}, 0, 20, 0.1)), true},
		{"light ink on black", fill(0.1, block(map[int]float64{}, 0, 20, 0.9)), false},
		// Mid-grey paper, light ink, a few pixels a little darker than the
		// paper: the ink is much further from the paper than the specks.
		{"light ink on grey", fill(0.5, block(block(map[int]float64{}, 0, 20, 0.95), 40, 10, 0.45)), false},
		{"dark ink on grey", fill(0.5, block(block(map[int]float64{}, 0, 20, 0.05), 40, 10, 0.55)), true},
		// No ink: the border's mean decides, mid-grey and lighter is paper.
		{"blank white", fill(0.9, nil), true},
		{"blank black", fill(0.1, nil), false},
		{"blank just above mid-grey", fill(0.51, nil), true},
		{"blank just below mid-grey", fill(0.49, nil), false},
	} {
		if got := inkIsDark(c.g, w, h); got != c.want {
			t.Errorf("%s: inkIsDark = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{3}, 0.5, 3},
		{[]float64{4, 1, 3, 2}, 0, 1},
		{[]float64{4, 1, 3, 2}, 0.5, 3},
		{[]float64{4, 1, 3, 2}, 0.24, 1},
		{[]float64{4, 1, 3, 2}, 0.25, 2},
		{[]float64{4, 1, 3, 2}, 1, 4},
		{[]float64{5, 1, 4, 2, 3}, 0.995, 5},
	} {
		if got := quantile(slices.Clone(c.xs), c.q); got != c.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.xs, c.q, got, c.want)
		}
	}
}

func TestGridSample(t *testing.T) {
	g := make([]float64, 600*3)
	for i := range g {
		g[i] = float64(i)
	}
	// 600 columns: every third (600/256 rounded up), all 3 rows.
	got := gridSample(g, 600, 3, nil)
	if len(got) != 3*200 || got[0] != 0 || got[1] != 3 || got[199] != 597 || got[200] != 600 || got[599] != 1797 {
		t.Errorf("600×3: %d samples, %v … %v", len(got), got[:3], got[len(got)-2:])
	}
	// The step is the side over 256, rounded up: 2 for 512 pixels, 3 for
	// 513.
	for _, c := range []struct{ w, h, step int }{{512, 1, 2}, {1, 512, 2}, {513, 1, 3}, {256, 1, 1}} {
		g := make([]float64, c.w*c.h)
		for i := range g {
			g[i] = float64(i)
		}
		got := gridSample(g, c.w, c.h, nil)
		n := max(c.w, c.h)
		if len(got) != (n+c.step-1)/c.step || got[1] != float64(c.step) {
			t.Errorf("%d×%d: %d samples, the second %v; want every %d", c.w, c.h, len(got), got[1], c.step)
		}
	}
	// Small images are read whole, less sub.
	got = gridSample([]float64{1, 2, 3, 4, 5, 6}, 3, 2, func(x, y int) float64 { return float64(10*y + x) })
	if want := []float64{1, 1, 1, -6, -6, -6}; !slices.Equal(got, want) {
		t.Errorf("3×2 less 10y+x: %v, want %v", got, want)
	}
}

// leastSquares recovers a polynomial exactly from points on it, falls back
// (ok false) when the points cannot determine it, leaves out points of
// weight 0 and weighs the others.
func TestLeastSquares(t *testing.T) {
	want := [6]float64{0.5, -0.25, 0.125, 0.3, -0.2, 0.1}
	var us, vs, r []float64
	for _, u := range []float64{-1, -0.5, 0, 0.5, 1} {
		for _, v := range []float64{-0.75, -0.25, 0.25, 0.75} {
			phi := basis(u, v)
			var z float64
			for k := range phi {
				z += want[k] * phi[k]
			}
			us, vs, r = append(us, u), append(vs, v), append(r, z)
		}
	}
	use := make([]float64, len(r))
	for i := range use {
		use[i] = 1
	}
	c, ok := leastSquares(us, vs, r, use, 6)
	for k := range want {
		if !ok || math.Abs(c[k]-want[k]) > 1e-12 {
			t.Fatalf("quadratic: %v, %v; want %v", c, ok, want)
		}
	}
	// An outlier left out of the fit changes nothing.
	r[7] += 100
	use[7] = 0
	c, ok = leastSquares(us, vs, r, use, 6)
	for k := range want {
		if !ok || math.Abs(c[k]-want[k]) > 1e-12 {
			t.Fatalf("quadratic without the outlier: %v, %v; want %v", c, ok, want)
		}
	}
	// The least-squares plane of the quadratic over this grid, symmetric
	// in u and in v: the squares and uv are orthogonal to u and v there,
	// so the slopes are the linear terms, and the squares' means (1/2 for
	// u, 5/16 for v) go into the constant.
	r[7] -= 100
	use[7] = 1
	c, ok = leastSquares(us, vs, r, use, 3)
	wantPlane := [6]float64{0.5 + 0.3*0.5 + 0.1*0.3125, -0.25, 0.125}
	for k := range wantPlane {
		if !ok || math.Abs(c[k]-wantPlane[k]) > 1e-12 {
			t.Fatalf("plane: %v, %v; want %v", c, ok, wantPlane)
		}
	}
	// Fewer points than terms, and points all on one row (v fixed), which
	// cannot tell v from 1.
	if _, ok := leastSquares(us[:2], vs[:2], r[:2], use[:2], 3); ok {
		t.Errorf("two points fitted a plane")
	}
	row := []float64{0.5, 0.5, 0.5, 0.5}
	if _, ok := leastSquares([]float64{-1, 0, 0.5, 1}, row, []float64{1, 2, 3, 4}, []float64{1, 1, 1, 1}, 3); ok {
		t.Errorf("one row of points fitted a plane")
	}
	// Points a hair off one row (1e-7) determine v no better: the pivot
	// is far below the diagonal's scale, and the fit is refused rather
	// than trusted.
	nearRow := []float64{0.5, 0.5, 0.5, 0.5 + 1e-7}
	if _, ok := leastSquares([]float64{-1, 0, 0.5, 1}, nearRow, []float64{1, 2, 3, 4}, []float64{1, 1, 1, 1}, 3); ok {
		t.Errorf("points 1e-7 off one row fitted a plane")
	}
	// A line along a row is a constant plus a slope in u: fitted as a
	// plane it is singular, as a constant it is the mean.
	c, ok = leastSquares([]float64{-1, 0, 1}, []float64{0, 0, 0}, []float64{1, 2, 6}, []float64{1, 1, 1}, 1)
	if !ok || c[0] != 3 {
		t.Errorf("constant of 1, 2, 6: %v, %v", c, ok)
	}
}

func TestBackgroundCoords(t *testing.T) {
	s := &background{w: 4, h: 2}
	for _, c := range []struct{ x, y, u, v float64 }{
		{0, 0, -0.75, -0.5},
		{3, 1, 0.75, 0.5},
		{1.5, 0.5, 0, 0},
		{-0.5, -0.5, -1, -1},
	} {
		if u, v := s.coords(c.x, c.y); u != c.u || v != c.v {
			t.Errorf("coords(%v, %v) = %v, %v; want %v, %v", c.x, c.y, u, v, c.u, c.v)
		}
	}
}

// A background that is a plane, with no ink, is fitted exactly: each
// block's median is the level at its centre (blocks of 5×5 pixels here,
// an odd number, and a plane is symmetric about its centre), and the
// surface through them is the plane.
func TestFitBackgroundPlane(t *testing.T) {
	for _, c := range []struct{ w, h int }{{80, 80}, {80, 45}, {45, 80}} {
		plane := func(x, y int) float64 { return 0.3 + 0.002*float64(x) - 0.001*float64(y) }
		g := make([]float64, c.w*c.h)
		for y := range c.h {
			for x := range c.w {
				g[y*c.w+x] = plane(x, y)
			}
		}
		bg := fitBackground(g, c.w, c.h)
		for y := range c.h {
			for x := range c.w {
				if d := bg.at(x, y) - plane(x, y); math.Abs(d) > 1e-9 {
					t.Fatalf("%d×%d: the fit is off by %g at (%d, %d)", c.w, c.h, d, x, y)
				}
			}
		}
	}
}
