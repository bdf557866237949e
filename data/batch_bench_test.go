package data

import (
	"context"
	"math/rand/v2"
	"testing"
)

// BenchmarkFillBatch fills batches of 32 from the real training images, in
// order and in a shuffled order (as training does): the shuffled batches
// read images from all over the 47 MB set.
func BenchmarkFillBatch(b *testing.B) {
	dir, err := DefaultDir()
	if err != nil {
		b.Fatal(err)
	}
	set, _, err := Load(context.Background(), dir)
	if err != nil {
		b.Skipf("needs MNIST in %s (make data): %v", dir, err)
	}
	const batch = 32
	order := make([]int, set.Len())
	for i := range order {
		order[i] = i
	}
	x := make([]float32, batch*ImageSize)
	y := make([]float32, batch*NumClasses)
	run := func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			lo := (i * batch) % (len(order) - batch)
			FillBatch(set, order[lo:lo+batch], x, y)
		}
	}
	b.Run("sequential", run)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	b.Run("shuffled", run)
}
