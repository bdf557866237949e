package main

import (
	"context"
	"net/http"
	"runtime"
	"time"
)

// Image admission (docs/serve.md, "The server"). Decoding is CPU-bound and
// the largest image accepted needs about 100 MB while it is processed, so
// images are decoded at most min(GOMAXPROCS, 4) at a time; twice as many
// requests plus a few more may hold a body in memory, reading it or waiting
// to decode it. A request that finds no room within admitWait is answered
// 503 then, rather than left queued behind work it cannot see the end of.
const (
	maxDecodeSlots = 4
	extraAdmitted  = 4
	admitWait      = 3 * time.Second
	// retryAfter is the Retry-After of a 503, in seconds: about how long
	// the admitted images take to decode at the pixel limit on 2 cores.
	retryAfter = "2"
)

// imageGate bounds the image requests the server works on at once. A
// request holds an admission slot from before it reads its body until the
// image is preprocessed, and a decode slot while it decodes.
type imageGate struct {
	admit  chan struct{}
	decode chan struct{}
	wait   time.Duration
}

// newImageGate lets decodeSlots images decode at once and admits
// 2×decodeSlots+extraAdmitted requests; one that is not admitted within
// wait is refused.
func newImageGate(decodeSlots int, wait time.Duration) *imageGate {
	return &imageGate{
		admit:  make(chan struct{}, 2*decodeSlots+extraAdmitted),
		decode: make(chan struct{}, decodeSlots),
		wait:   wait,
	}
}

// defaultDecodeSlots is one decode per core, at most maxDecodeSlots: more
// at once than there are cores only costs memory.
func defaultDecodeSlots() int {
	return max(1, min(runtime.GOMAXPROCS(0), maxDecodeSlots))
}

// enter takes an admission slot, waiting at most g.wait: a 503 error (see
// writeError, which adds Retry-After) when none frees up in time or the
// client goes away. Every nil return must be followed by leave.
func (g *imageGate) enter(ctx context.Context) error {
	select {
	case g.admit <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.admit <- struct{}{}:
		return nil
	case <-timer.C:
		return &apiError{http.StatusServiceUnavailable, "the server is busy decoding other images: try again in a few seconds"}
	case <-ctx.Done():
		return &apiError{http.StatusServiceUnavailable, "request cancelled while waiting to be read"}
	}
}

func (g *imageGate) leave() { <-g.admit }

// decoding runs f holding a decode slot. Admitted requests are few, so the
// wait is at most a few decodes; only the client going away cuts it short.
func (g *imageGate) decoding(ctx context.Context, f func()) error {
	select {
	case g.decode <- struct{}{}:
	case <-ctx.Done():
		return &apiError{http.StatusServiceUnavailable, "request cancelled while waiting to decode"}
	}
	defer func() { <-g.decode }()
	f()
	return nil
}
