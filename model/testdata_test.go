package model

import (
	"math/rand/v2"

	"mnist/data"
)

// syntheticSet makes n random images whose label is readable from the
// pixels (the mean brightness of a label-specific band of rows), so a few
// hundred steps of training can learn it without the real MNIST files.
func syntheticSet(n int, seed uint64) *data.Set {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &data.Set{Images: make([]byte, n*data.ImageSize), Labels: make([]byte, n)}
	for i := 0; i < n; i++ {
		label := rng.IntN(data.NumClasses)
		s.Labels[i] = byte(label)
		img := s.Images[i*data.ImageSize : (i+1)*data.ImageSize]
		for p := range img {
			img[p] = byte(rng.IntN(64))
		}
		// Light up rows 2*label..2*label+2.
		for r := 2 * label; r < 2*label+3; r++ {
			for c := 4; c < 24; c++ {
				img[r*data.ImageCols+c] = byte(160 + rng.IntN(96))
			}
		}
	}
	return s
}
