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
	n := s.Len()
	for _, i := range indices {
		if i < 0 || i >= n {
			panic(fmt.Sprintf("data.FillBatch: index %d out of range for a set of %d images", i, n))
		}
	}
	if x32, ok := any(x).([]float32); ok && hasPixelKernel() {
		fillPixelsAVX(s, indices, x32)
	} else {
		fillPixels(s, indices, x)
	}
	for b, i := range indices {
		yb := y[b*NumClasses : (b+1)*NumClasses]
		clear(yb)
		// Labels are checked to be 0..9 when a set is loaded; a hand-built Set
		// with a bad label gets an all-zero row rather than a panic.
		if l := int(s.Labels[i]); l < NumClasses {
			yb[l] = 1
		}
	}
}

// fillPixels scales the images at indices (checked) into x through a
// table of the 256 possible pixel values, rather than dividing 25,000
// times a batch; the same values.
func fillPixels[T float32 | float64](s *Set, indices []int, x []T) {
	var scaled [256]T
	for v := range scaled {
		scaled[v] = T(v) / 255
	}
	for b, i := range indices {
		xb := x[b*ImageSize : (b+1)*ImageSize]
		for j, p := range s.Images[i*ImageSize : (i+1)*ImageSize] {
			xb[j] = scaled[p]
		}
	}
}

// fillPixelsAVX is fillPixels for float32 on an AVX2 machine: the kernel
// divides eight pixels at a time (the same values as the table) while the
// cache lines of the images prefetchAhead on are on their way. A shuffled
// batch reads its images from all over the set, and waiting on memory for
// each one took longer than converting it.
func fillPixelsAVX(s *Set, indices []int, x []float32) {
	image := func(i int) []byte { return s.Images[i*ImageSize : (i+1)*ImageSize] }
	for _, i := range indices[:min(prefetchAhead, len(indices))] {
		prefetchBytes(image(i))
	}
	for b, i := range indices {
		if b+prefetchAhead < len(indices) {
			prefetchBytes(image(indices[b+prefetchAhead]))
		}
		scalePixelsAVX(x[b*ImageSize:(b+1)*ImageSize], image(i))
	}
}

// prefetchAhead is how many images ahead of the one being converted
// fillPixelsAVX asks for: enough to hide a miss to memory behind the
// conversions in between.
const prefetchAhead = 4
