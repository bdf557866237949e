// Package modeltest holds what the model's tests and the GPU engines' tests
// share: small learnable image sets and the conversion of a batch into the
// form the plain-Go reference takes.
package modeltest

import (
	"math"
	"math/rand/v2"

	"mnist/data"
)

// LearnableSet makes n random images whose label is readable from the
// pixels (a bright band of rows that depends on the label), so a few hundred
// steps of training learn it without the real MNIST files.
func LearnableSet(n int, seed uint64) *data.Set {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &data.Set{Images: make([]byte, n*data.ImageSize), Labels: make([]byte, n)}
	for i := 0; i < n; i++ {
		label := rng.IntN(data.NumClasses)
		s.Labels[i] = byte(label)
		img := s.Images[i*data.ImageSize : (i+1)*data.ImageSize]
		for p := range img {
			img[p] = byte(rng.IntN(64))
		}
		for r := 2 * label; r < 2*label+3; r++ {
			for c := 4; c < 24; c++ {
				img[r*data.ImageCols+c] = byte(160 + rng.IntN(96))
			}
		}
	}
	return s
}

// ReferenceBatch returns the images at idx scaled to [0, 1] and their
// labels, as reference.ForwardBackward takes them.
func ReferenceBatch(set *data.Set, idx []int) ([]float64, []int) {
	x := make([]float64, len(idx)*data.ImageSize)
	y := make([]float64, len(idx)*data.NumClasses)
	data.FillBatch(set, idx, x, y)
	labels := make([]int, len(idx))
	for r, i := range idx {
		labels[r] = int(set.Labels[i])
	}
	return x, labels
}

// MaxRelErr is the largest |got-want| / max(|want|, floor); +Inf when the
// lengths differ or a value is NaN.
func MaxRelErr(got, want []float64, floor float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range want {
		d := math.Abs(got[i]-want[i]) / math.Max(math.Abs(want[i]), floor)
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = math.Max(worst, d)
	}
	return worst
}
