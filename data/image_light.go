package data

import (
	"math"
	"slices"
)

// Background removal for photos. A photo of a digit on paper is rarely lit
// evenly: it darkens toward a corner or under a shadow, and the shaded
// paper, as dark as faint ink, would count as ink, drag the bounding box
// into the corner and misread the digit. The background is therefore not
// one level but a smooth surface, fitted to the typical (median) level of
// blocks of the image while blocks dominated by ink are left out, and the
// ink is measured against it.

const (
	// backgroundBlocks is how many blocks the longer side is cut into to
	// sample the background: fine enough to follow a shadow across the
	// page, coarse enough that a block is mostly paper beside a stroke.
	backgroundBlocks = 16
	// minBlock is the smallest block side in pixels, so that a median has
	// enough pixels to mean something in a small image.
	minBlock = 4
	// blockSamples caps the pixels read per block side (a block reads at
	// most blockSamples² of its pixels, evenly spread), and gridSamples the
	// pixels per image side read to measure noise and contrast, so that a
	// 12-megapixel photo costs no more to analyse than a small one.
	blockSamples = 32
	gridSamples  = 256
	// minPaper is the darkest paper brightness (0..1) whose ink is still
	// stretched to full contrast: ink in a deeper shadow is amplified at
	// most 1/minPaper = 4 times, and so is the noise there.
	minPaper = 0.25
	// noiseSigmas: a pixel must exceed the background by this many
	// standard deviations of the photo's noise to be ink at all. Five
	// leaves about one pixel in three million of pure noise.
	noiseSigmas = 5
	// inkBlockMargin is the least amount by which a block's median must
	// exceed the fitted surface to be left out as ink rather than paper.
	inkBlockMargin = 0.05
)

// inkIsDark says whether the ink is darker than the background: it is if the
// image's darkest pixels (0.5th percentile) lie further below the border's
// median level than its brightest (99.5th) lie above it. Ink is a small part
// of the image, so it is the extreme on one side; the border, assumed to be
// background, sits at the other. When the two are within 0.1 of each other
// (a blank image, strokes thinner than the percentile) the border's mean
// decides, as for a clean drawing: mid-grey or lighter is paper.
func inkIsDark(g []float64, w, h int) bool {
	border := borderPixels(g, w, h)
	var sum float64
	for _, v := range border {
		sum += v
	}
	b := quantile(border, 0.5)
	sample := gridSample(g, w, h, nil)
	lo, hi := quantile(sample, 0.005), quantile(sample, 0.995)
	if d := (b - lo) - (hi - b); math.Abs(d) > 0.1 {
		return d > 0
	}
	return sum/float64(len(border)) > 0.5
}

// borderPixels returns the pixels of the image's outermost rows and
// columns, each once, row by row.
func borderPixels(g []float64, w, h int) []float64 {
	border := make([]float64, 0, 2*(w+h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if y == 0 || y == h-1 || x == 0 || x == w-1 {
				border = append(border, g[y*w+x])
			}
		}
	}
	return border
}

// removeBackground turns g (ink brighter than the background, 0..1) into
// ink levels 0..1 in place: each pixel's excess over the fitted background
// level B, divided by the paper brightness 1-B there (at least minPaper),
// and 0 where the excess is within the image's noise.
//
// On an evenly lit image whose border is one level, B is that level
// everywhere and the result is (v-B)/(1-B), clamped: a plain subtraction of
// the background and stretch to full contrast.
func removeBackground(g []float64, w, h int) {
	bg := fitBackground(g, w, h)
	// The noise: the spread of the pixels about the background, measured
	// robustly (the median absolute deviation, scaled to a standard
	// deviation), so that the ink, a minority, does not count.
	residual := gridSample(g, w, h, bg.at)
	med := quantile(residual, 0.5)
	for i, r := range residual {
		residual[i] = math.Abs(r - med)
	}
	noise := noiseSigmas * 1.4826 * quantile(residual, 0.5)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			b := min(max(bg.at(x, y), 0), 1)
			e := g[y*w+x] - b
			if e <= noise {
				g[y*w+x] = 0
				continue
			}
			g[y*w+x] = min(e/max(1-b, minPaper), 1)
		}
	}
}

// background is the fitted background surface: base plus a polynomial of
// up to second degree in the pixel coordinates scaled to -1..1.
type background struct {
	w, h  int
	base  float64
	coef  [6]float64
	terms int // 1 (constant), 3 (plane) or 6 (quadratic)
}

// basis is the polynomial's terms at (u, v) in -1..1.
func basis(u, v float64) [6]float64 { return [6]float64{1, u, v, u * u, u * v, v * v} }

// coords scales pixel (x, y) to -1..1 across the image, at pixel centres.
func (s *background) coords(x, y float64) (u, v float64) {
	return 2*(x+0.5)/float64(s.w) - 1, 2*(y+0.5)/float64(s.h) - 1
}

func (s *background) at(x, y int) float64 {
	u, v := s.coords(float64(x), float64(y))
	phi := basis(u, v)
	out := s.base
	for k := 0; k < s.terms; k++ {
		out += s.coef[k] * phi[k]
	}
	return out
}

// fitBackground fits the surface to the medians of blocks of the image,
// robustly: the blocks lying above the median of all blocks by more than three
// (robust) standard deviations of the fit's residuals, and by more than
// inkBlockMargin, are taken for ink and left out, the surface fitted to
// the others, the blocks measured against it, and so on until the set of
// blocks settles. The fit is to the medians less their median (base), so
// that blocks all at one level give exactly that level, with no rounding.
// Where too few blocks remain for a quadratic (a small image, ink in most
// blocks of a row) a plane or a constant is fitted instead.
func fitBackground(g []float64, w, h int) *background {
	side := max(minBlock, (max(w, h)+backgroundBlocks-1)/backgroundBlocks)
	step := max(1, side/blockSamples)
	bg := &background{w: w, h: h}
	var us, vs, ms []float64
	block := make([]float64, 0, blockSamples*blockSamples)
	for by := 0; by < h; by += side {
		for bx := 0; bx < w; bx += side {
			block = block[:0]
			for y := by; y < min(by+side, h); y += step {
				for x := bx; x < min(bx+side, w); x += step {
					block = append(block, g[y*w+x])
				}
			}
			u, v := bg.coords(float64(bx+min(bx+side, w)-1)/2, float64(by+min(by+side, h)-1)/2)
			us, vs, ms = append(us, u), append(vs, v), append(ms, quantile(block, 0.5))
		}
	}
	bg.base = quantile(slices.Clone(ms), 0.5)
	r := make([]float64, len(ms))
	for i, m := range ms {
		r[i] = m - bg.base
	}
	use := make([]bool, len(ms))
	for i := range use {
		use[i] = true
	}
	res := make([]float64, len(ms))
	// The first round measures the blocks against the base alone: fitted
	// to every block, a quadratic would bend toward the ink in the middle
	// of the image and hide it.
	for round := range 10 {
		bg.terms = 0
		for _, terms := range []int{6, 3, 1} {
			if round == 0 {
				break
			}
			if c, ok := leastSquares(us, vs, r, use, terms); ok {
				bg.coef, bg.terms = c, terms
				break
			}
		}
		var spread []float64
		for i := range r {
			phi := basis(us[i], vs[i])
			res[i] = r[i]
			for k := 0; k < bg.terms; k++ {
				res[i] -= bg.coef[k] * phi[k]
			}
			if use[i] {
				spread = append(spread, math.Abs(res[i]))
			}
		}
		cut := max(3*1.4826*quantile(spread, 0.5), inkBlockMargin)
		changed := false
		for i := range use {
			if keep := res[i] <= cut; keep != use[i] {
				use[i], changed = keep, true
			}
		}
		if !changed && round > 0 {
			break
		}
	}
	return bg
}

// leastSquares fits the first terms basis functions to r over the points in
// use, by the normal equations and Gaussian elimination with partial
// pivoting. ok is false with fewer points than terms or a (nearly) singular
// system, e.g. all points on one row.
func leastSquares(us, vs, r []float64, use []bool, terms int) (c [6]float64, ok bool) {
	var a [6][7]float64
	n := 0
	for i := range r {
		if !use[i] {
			continue
		}
		n++
		phi := basis(us[i], vs[i])
		for j := 0; j < terms; j++ {
			for k := 0; k < terms; k++ {
				a[j][k] += phi[j] * phi[k]
			}
			a[j][terms] += phi[j] * r[i]
		}
	}
	if n < terms {
		return c, false
	}
	// The diagonal is a sum of squares; a pivot far below it means the
	// points do not determine that term.
	var scale float64
	for j := 0; j < terms; j++ {
		scale = max(scale, a[j][j])
	}
	for col := 0; col < terms; col++ {
		p := col
		for row := col + 1; row < terms; row++ {
			if math.Abs(a[row][col]) > math.Abs(a[p][col]) {
				p = row
			}
		}
		if !(math.Abs(a[p][col]) > 1e-9*scale) {
			return c, false
		}
		a[col], a[p] = a[p], a[col]
		for row := col + 1; row < terms; row++ {
			f := a[row][col] / a[col][col]
			for k := col; k <= terms; k++ {
				a[row][k] -= f * a[col][k]
			}
		}
	}
	for row := terms - 1; row >= 0; row-- {
		s := a[row][terms]
		for k := row + 1; k < terms; k++ {
			s -= a[row][k] * c[k]
		}
		c[row] = s / a[row][row]
	}
	return c, true
}

// gridSample reads at most gridSamples×gridSamples pixels of g, evenly
// spread, less sub(x, y) when sub is not nil.
func gridSample(g []float64, w, h int, sub func(x, y int) float64) []float64 {
	sx, sy := max(1, (w+gridSamples-1)/gridSamples), max(1, (h+gridSamples-1)/gridSamples)
	out := make([]float64, 0, ((w+sx-1)/sx)*((h+sy-1)/sy))
	for y := 0; y < h; y += sy {
		for x := 0; x < w; x += sx {
			v := g[y*w+x]
			if sub != nil {
				v -= sub(x, y)
			}
			out = append(out, v)
		}
	}
	return out
}

// quantile is the q-quantile (0..1) of xs, the nearest-rank value, 0 for
// none. It sorts xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}
