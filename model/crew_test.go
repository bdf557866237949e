package model

import "testing"

// TestCrewHelpers: a helper per core besides the caller's from batch 256
// on, none below it or on one core.
func TestCrewHelpers(t *testing.T) {
	for _, c := range []struct{ batch, procs, want int }{
		{32, 2, 0}, {255, 16, 0}, {256, 2, 1}, {2048, 2, 1}, {2048, 16, 15}, {2048, 1, 0}, {32, 1, 0},
	} {
		if got := crewHelpers(c.batch, c.procs); got != c.want {
			t.Errorf("crewHelpers(batch %d, %d procs) = %d, want %d", c.batch, c.procs, got, c.want)
		}
	}
}
