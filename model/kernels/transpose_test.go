package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTransposeMatchesLoop checks the blocked transpose against the plain
// loop for whole blocks, ragged edges and padded leading dimensions, and
// that it writes nothing but the transpose.
func TestTransposeMatchesLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, tc := range []struct{ rows, cols, padS, padD int }{
		{1, 1, 0, 0}, {3, 5, 0, 0}, {8, 8, 0, 0}, {8, 9, 1, 2}, {9, 8, 0, 0}, {7, 17, 3, 0},
		{16, 16, 0, 5}, {23, 41, 2, 1}, {32, 784, 0, 0}, {784, 32, 0, 0}, {64, 10, 0, 0}, {128, 64, 0, 0},
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.rows, tc.cols), func(t *testing.T) {
			lds, ldd := tc.cols+tc.padS, tc.rows+tc.padD
			src := sparseMatrix(r, tc.rows, tc.cols, lds, 0.3)
			const untouched = -7
			got := make([]float32, tc.cols*ldd)
			for i := range got {
				got[i] = untouched
			}
			transpose(got, ldd, src, lds, tc.rows, tc.cols)
			for c := 0; c < tc.cols; c++ {
				for j := 0; j < ldd; j++ {
					want := float32(untouched)
					if j < tc.rows {
						want = src[j*lds+c]
					}
					if g := got[c*ldd+j]; g != want {
						t.Fatalf("dst[%d][%d] = %v, want %v", c, j, g, want)
					}
				}
			}
		})
	}
}
