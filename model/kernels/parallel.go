package kernels

import (
	"runtime"
	"sync"
)

// split runs body over [0, n) in up to GOMAXPROCS contiguous pieces at once,
// each a multiple of align long (but the last) and at least minPiece long.
// It returns when all pieces are done. The calling goroutine does the last
// piece itself, so a split into one piece costs no goroutine.
func split(n, align, minPiece int, body func(lo, hi int)) {
	pieces := min(runtime.GOMAXPROCS(0), n/max(minPiece, 1))
	if pieces <= 1 {
		body(0, n)
		return
	}
	size := (n + pieces - 1) / pieces
	size = (size + align - 1) / align * align
	var wg sync.WaitGroup
	lo := 0
	for ; lo+size < n; lo += size {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			body(lo, hi)
		}(lo, lo+size)
	}
	body(lo, n)
	wg.Wait()
}
