package data

import "math"

// Frames. A digit scanned from a box on a form, or a drawing exported with
// a border, has a frame around it: rings of the image's edge at one level,
// the paper inside at another. The edge is taken for background (inkIsDark
// judges the ink's polarity by it), so a frame would be taken for the
// paper and the paper for ink. trimFrame finds such a frame and cuts it off.
const (
	// frameTolerance is how far (0..1) a pixel may lie from a ring's level
	// and still count as that level: above camera noise and JPEG ringing,
	// below the contrast of ink on paper.
	frameTolerance = 0.15
	// frameUniform is the share of a ring's pixels that must lie at its
	// level for the ring to count as all one level: a stroke crossing the
	// ring, or paper beside ink in a digit cropped close, breaks it.
	frameUniform = 0.9
	// frameContrast is how far apart the frame's and the paper's levels
	// must be.
	frameContrast = 0.4
	// frameBlurRings is how many rings between the frame and the paper may
	// be neither (the frame's anti-aliased or blurred inner edge).
	frameBlurRings = 2
	// ringSamples caps the pixels read per ring, evenly spread, so that a
	// large photo's rings cost no more than a small image's.
	ringSamples = 4096
)

// trimFrame returns the part of the w×h grey image g inside a frame, as a
// new image (g itself, unchanged, when there is none): the rings from the
// edge inward that lie at one level, followed, after at most frameBlurRings
// rings of neither, by three rings at a level at least frameContrast away
// (the paper), which gives way further in (ringsBreak: the digit). The
// frame may be up to a sixth of the shorter side thick.
func trimFrame(g []float64, w, h int) ([]float64, int, int) {
	edge, uniform := ringLevel(g, w, h, 0)
	if !uniform {
		return g, w, h
	}
	blur := 0
	for d := 1; d <= min(w, h)/6; d++ {
		if ringShare(g, w, h, d, edge) >= frameUniform {
			if blur > 0 {
				return g, w, h // the edge's level again: no frame
			}
			continue
		}
		if level, uniform := ringLevel(g, w, h, d); uniform && math.Abs(level-edge) >= frameContrast &&
			ringShare(g, w, h, d+1, level) >= frameUniform && ringShare(g, w, h, d+2, level) >= frameUniform &&
			ringsBreak(g, w, h, d+3, level) {
			iw, ih := w-2*d, h-2*d
			inner := make([]float64, iw*ih)
			for y := range ih {
				copy(inner[y*iw:(y+1)*iw], g[(y+d)*w+d:(y+d)*w+d+iw])
			}
			return inner, iw, ih
		}
		if blur++; blur > frameBlurRings {
			return g, w, h
		}
	}
	return g, w, h
}

// ringsBreak says whether some ring from d inward is not all at level:
// inside a frame, the paper gives way to the digit somewhere. Rings at one
// level all the way in are not paper around a digit but the ink itself,
// seen through a pixel or two of paper: a thick 1 cropped close.
func ringsBreak(g []float64, w, h, d int, level float64) bool {
	for ; 2*d < min(w, h); d++ {
		if ringShare(g, w, h, d, level) < frameUniform {
			return true
		}
	}
	return false
}

// ringLevel is the median level of ring d (the pixels d from the image's
// edge, sampled) and whether the ring is all at it (frameUniform of its
// pixels within frameTolerance). A ring that does not exist is not uniform.
func ringLevel(g []float64, w, h, d int) (level float64, uniform bool) {
	ring := ringPixels(g, w, h, d)
	if len(ring) == 0 {
		return 0, false
	}
	level = quantile(ring, 0.5)
	return level, shareNear(ring, level) >= frameUniform
}

// ringShare is the share of ring d's (sampled) pixels within
// frameTolerance of level; 0 for a ring that does not exist.
func ringShare(g []float64, w, h, d int, level float64) float64 {
	return shareNear(ringPixels(g, w, h, d), level)
}

// shareNear is the share of values within frameTolerance of level, 0 for
// none.
func shareNear(values []float64, level float64) float64 {
	if len(values) == 0 {
		return 0
	}
	near := 0
	for _, v := range values {
		if math.Abs(v-level) <= frameTolerance {
			near++
		}
	}
	return float64(near) / float64(len(values))
}

// ringPixels samples ring d of the image: the pixels d from its nearest
// edge, at most about ringSamples of them, evenly spread around it.
func ringPixels(g []float64, w, h, d int) []float64 {
	x0, y0, x1, y1 := d, d, w-1-d, h-1-d
	if x1 < x0 || y1 < y0 {
		return nil
	}
	perimeter := 2*(x1-x0) + 2*(y1-y0)
	step := max(1, perimeter/ringSamples)
	out := make([]float64, 0, perimeter/step+1)
	if perimeter == 0 {
		return append(out, g[y0*w+x0])
	}
	// Walk the ring clockwise from its top-left corner, every step-th pixel.
	for k := 0; k < perimeter; k += step {
		var x, y int
		switch t := k; {
		case t < x1-x0:
			x, y = x0+t, y0
		case t < x1-x0+y1-y0:
			x, y = x1, y0+t-(x1-x0)
		case t < 2*(x1-x0)+y1-y0:
			x, y = x1-(t-(x1-x0+y1-y0)), y1
		default:
			x, y = x0, y1-(t-(2*(x1-x0)+y1-y0))
		}
		out = append(out, g[y*w+x])
	}
	return out
}
