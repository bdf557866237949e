package kernels

import (
	"testing"
	"time"
)

// TestSplitWaitsForSlowHelper checks that split returns only when every
// piece is done, also when a helper holds a piece far longer than the
// caller polls for (waitSpin) and the caller has to sleep until it ends.
// Every piece is slow, so whichever pieces the helpers take, the caller
// runs out of work first at least some of the time.
func TestSplitWaitsForSlowHelper(t *testing.T) {
	crew := NewCrew(3)
	defer crew.Close()
	for round := 0; round < 20; round++ {
		done := make([]bool, 4)
		crew.split(4, 1, 1, func(lo, hi int) {
			time.Sleep(time.Duration(1+lo) * 2 * waitSpin)
			for i := lo; i < hi; i++ {
				done[i] = true
			}
		})
		for i, d := range done {
			if !d {
				t.Fatalf("round %d: split returned before piece %d was done", round, i)
			}
		}
	}
}
