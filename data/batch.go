package data

import "fmt"

// FillBatch writes the images at indices into x (len(indices)*ImageSize
// values, pixel/255) and one-hot labels into y (len(indices)*NumClasses).
// Generic so model tests can use float64.
//
// The slices are the caller's reusable batch buffers, so a size mismatch or
// an index outside the set is a programming error, not bad input: it panics
// with a message saying which, like an out-of-range slice index would.
func FillBatch[T float32 | float64](s *Set, indices []int, x, y []T) {
	if len(x) < len(indices)*ImageSize || len(y) < len(indices)*NumClasses {
		panic(fmt.Sprintf("data.FillBatch: %d indices need len(x) >= %d and len(y) >= %d, have %d and %d",
			len(indices), len(indices)*ImageSize, len(indices)*NumClasses, len(x), len(y)))
	}
	// A table of the 256 possible pixel values, so that the loop below looks
	// values up rather than dividing 25,000 times a batch; same values.
	var scaled [256]T
	for v := range scaled {
		scaled[v] = T(v) / 255
	}
	// float32 batches on an AVX2 machine take the vector kernel, which
	// divides eight pixels at a time (the same values as the table) while
	// the next image's cache lines are on their way.
	x32, vector := any(x).([]float32)
	vector = vector && hasPixelKernel()
	n := s.Len()
	if vector {
		for b := range min(prefetchAhead, len(indices)) {
			prefetchImage(s, indices, b)
		}
	}
	for b, i := range indices {
		if i < 0 || i >= n {
			panic(fmt.Sprintf("data.FillBatch: index %d out of range for a set of %d images", i, n))
		}
		img := s.Images[i*ImageSize : (i+1)*ImageSize]
		if vector {
			prefetchImage(s, indices, b+prefetchAhead)
			scalePixelsAVX(x32[b*ImageSize:(b+1)*ImageSize], img)
		} else {
			xb := x[b*ImageSize : (b+1)*ImageSize]
			for j, p := range img {
				xb[j] = scaled[p]
			}
		}
		yb := y[b*NumClasses : (b+1)*NumClasses]
		clear(yb)
		// Labels are checked to be 0..9 when a set is loaded; a hand-built Set
		// with a bad label gets an all-zero row rather than a panic.
		if l := int(s.Labels[i]); l < NumClasses {
			yb[l] = 1
		}
	}
}

// prefetchAhead is how many images ahead of the one being converted
// FillBatch asks for: enough to hide a miss to memory behind the
// conversions in between.
const prefetchAhead = 4

// prefetchImage asks for the cache lines of the image at indices[b], if
// there is one and it is in the set.
func prefetchImage(s *Set, indices []int, b int) {
	if b >= len(indices) {
		return
	}
	if i := indices[b]; i >= 0 && i < s.Len() {
		prefetchBytes(s.Images[i*ImageSize : (i+1)*ImageSize])
	}
}
