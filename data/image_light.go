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
	noise := noiseSigmas * paperNoise(gridSample(g, w, h, bg.at))
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

// paperNoise is the standard deviation of the paper's noise, from the
// pixels' residuals about the fitted background. Ink only ever lies above
// the background, so the residuals at or below it are paper alone, however
// much of the image the ink covers: their median distance below is the
// noise's median absolute deviation, scaled to a standard deviation. (The
// spread of all the residuals would count the ink as noise once it covers
// half the image, as a digit cropped close does, and lift the threshold
// above every stroke.)
func paperNoise(residual []float64) float64 {
	below := residual[:0]
	for _, r := range residual {
		if r <= 0 {
			below = append(below, -r)
		}
	}
	return 1.4826 * quantile(below, 0.5)
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
// robustly. The blocks taken for paper are first found from below
// (paperBlocks), so that they are found however much of the image the ink
// covers; the surface is fitted to them, and the blocks lying above it by
// more than three (robust) standard deviations of the fit's residuals, and
// by more than inkBlockMargin, are taken for ink and left out, the surface
// fitted again, and so on until the set of blocks settles. The fit is to
// the medians less the paper's median (base), so that paper all at one
// level gives exactly that level, with no rounding. Where too few blocks
// remain for a quadratic (a small image, ink in most blocks of a row) a
// plane or a constant is fitted instead.
func fitBackground(g []float64, w, h int) *background {
	bg := &background{w: w, h: h}
	us, vs, ms := blockMedians(g, w, h, bg.coords)
	use := paperBlocks(us, vs, ms)
	var paper []float64
	for i, m := range ms {
		if use[i] {
			paper = append(paper, m)
		}
	}
	bg.base = quantile(paper, 0.5)
	r := make([]float64, len(ms))
	for i, m := range ms {
		r[i] = m - bg.base
	}
	weights := make([]float64, len(ms))
	var res []float64
	for range 10 {
		for i, u := range use {
			weights[i] = boolWeight(u)
		}
		bg.coef, bg.terms = fitSurface(us, vs, r, weights, 6)
		res = residuals(us, vs, r, bg.coef, bg.terms, res)
		var spread []float64
		for i := range res {
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
		if !changed {
			break
		}
	}
	return bg
}

// blockMedians cuts the image into blocks (backgroundBlocks along the
// longer side, at least minBlock pixels) and returns each block's median
// level ms at its centre (us, vs), in coords' -1..1. The border, taken for
// background by inkIsDark, is sampled again by itself, a pixel deep, in
// segments of a block's length: a digit cropped close, a 1 above all, may
// leave paper only in a column or two at the edges, too thin to carry any
// block's median.
func blockMedians(g []float64, w, h int, coords func(x, y float64) (u, v float64)) (us, vs, ms []float64) {
	side := max(minBlock, (max(w, h)+backgroundBlocks-1)/backgroundBlocks)
	step := max(1, side/blockSamples)
	block := make([]float64, 0, blockSamples*blockSamples)
	for by := 0; by < h; by += side {
		for bx := 0; bx < w; bx += side {
			block = block[:0]
			for y := by; y < min(by+side, h); y += step {
				for x := bx; x < min(bx+side, w); x += step {
					block = append(block, g[y*w+x])
				}
			}
			u, v := coords(float64(bx+min(bx+side, w)-1)/2, float64(by+min(by+side, h)-1)/2)
			us, vs, ms = append(us, u), append(vs, v), append(ms, quantile(block, 0.5))
		}
	}
	// Each edge: its first pixel (x, y) and its direction (dx, dy).
	for _, edge := range [][4]int{{0, 0, 1, 0}, {0, h - 1, 1, 0}, {0, 0, 0, 1}, {w - 1, 0, 0, 1}} {
		x, y, dx, dy := edge[0], edge[1], edge[2], edge[3]
		n := dx*w + dy*h
		for at := 0; at < n; at += side {
			block = block[:0]
			for k := at; k < min(at+side, n); k += step {
				block = append(block, g[(y+k*dy)*w+x+k*dx])
			}
			mid := float64(at+min(at+side, n)-1) / 2
			u, v := coords(float64(x)+mid*float64(dx), float64(y)+mid*float64(dy))
			us, vs, ms = append(us, u), append(vs, v), append(ms, quantile(block, 0.5))
		}
	}
	return us, vs, ms
}

// envelopeInkWeight is the weight, against 1 for a block below it, that
// paperBlocks gives a block above the surface it fits: small, so that the
// surface settles under the ink onto the paper even when ink fills most
// blocks, as in a digit cropped close.
const envelopeInkWeight = 0.01

// roundingSlack is how far above a fitted surface a block still counts as
// on it: a surface fitted exactly through blocks (paper that is a plane)
// misses them by rounding, at times all on the same side.
const roundingSlack = 1e-9

// paperBlocks says which blocks, with medians ms at (us, vs), are paper. Ink
// lies only above the paper, so the paper is the lower envelope of the
// blocks: a plane fitted by asymmetric least squares (each block weighted
// 1 below the plane and envelopeInkWeight above it, refitted until the
// weights settle) runs along the paper, and the blocks within three
// standard deviations of the residuals below it (and within
// inkBlockMargin) are paper. Measuring the spread below the surface, where
// there is no ink, keeps it from growing with the ink, as the spread of
// all the blocks would once ink is in more than half of them. A plane, not
// a quadratic: only picking the paper out, it need not follow a shadow's
// curve, and a quadratic could rise onto the ink wherever no paper holds
// it down, between the two edges of a 1 cropped close.
func paperBlocks(us, vs, ms []float64) []bool {
	weights := make([]float64, len(ms))
	for i := range weights {
		weights[i] = 1
	}
	var res []float64
	for range 30 {
		coef, terms := fitSurface(us, vs, ms, weights, 3)
		res = residuals(us, vs, ms, coef, terms, res)
		changed := false
		for i, d := range res {
			if wt := max(boolWeight(d <= roundingSlack), envelopeInkWeight); wt != weights[i] {
				weights[i], changed = wt, true
			}
		}
		if !changed {
			break
		}
	}
	var below []float64
	for _, d := range res {
		if d <= roundingSlack {
			below = append(below, max(-d, 0))
		}
	}
	cut := max(3*1.4826*quantile(below, 0.5), inkBlockMargin)
	use := make([]bool, len(ms))
	for i, d := range res {
		use[i] = d <= cut
	}
	return use
}

// boolWeight is a block's weight in a fit: 1 if it counts, 0 if not.
func boolWeight(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fitSurface fits the quadratic surface to r at (us, vs) with the given
// weights, or a plane or a constant where the points of full weight (1) do
// not determine a quadratic; none (terms 0) where they determine nothing.
// The lightly weighted points must not decide a term alone: a narrow image
// of a 1 has paper only in its outer columns, and a quadratic across it
// that only the stroke determines would rise onto the stroke.
func fitSurface(us, vs, r, weights []float64, maxTerms int) (coef [6]float64, terms int) {
	full := make([]float64, len(weights))
	for i, wt := range weights {
		full[i] = boolWeight(wt >= 1)
	}
	for _, terms := range []int{6, 3, 1} {
		if terms > maxTerms {
			continue
		}
		if _, ok := leastSquares(us, vs, r, full, terms); !ok {
			continue
		}
		if c, ok := leastSquares(us, vs, r, weights, terms); ok {
			return c, terms
		}
	}
	return coef, 0
}

// residuals is r less the surface (coef, terms) at (us, vs), into out.
func residuals(us, vs, r []float64, coef [6]float64, terms int, out []float64) []float64 {
	out = out[:0]
	for i := range r {
		phi := basis(us[i], vs[i])
		d := r[i]
		for k := 0; k < terms; k++ {
			d -= coef[k] * phi[k]
		}
		out = append(out, d)
	}
	return out
}

// leastSquares fits the first terms basis functions to r, each point
// weighted (0 leaves it out), by the normal equations and Gaussian
// elimination with partial pivoting. ok is false with fewer weighted points
// than terms or a (nearly) singular system, e.g. all points on one row.
func leastSquares(us, vs, r, weights []float64, terms int) (c [6]float64, ok bool) {
	var a [6][7]float64
	n := 0
	for i := range r {
		wt := weights[i]
		if wt == 0 {
			continue
		}
		n++
		phi := basis(us[i], vs[i])
		for j := 0; j < terms; j++ {
			for k := 0; k < terms; k++ {
				a[j][k] += wt * phi[j] * phi[k]
			}
			a[j][terms] += wt * phi[j] * r[i]
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
