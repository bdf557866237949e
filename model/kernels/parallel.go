package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// split runs body over [0, n) in contiguous pieces, each a multiple of align
// long (but the last) and at least minPiece long, sharing them with the
// helpers of the process's crew. It returns when all pieces are done.
func split(n, align, minPiece int, body func(lo, hi int)) {
	pieces := min(runtime.GOMAXPROCS(0), n/max(minPiece, 1))
	if pieces <= 1 {
		body(0, n)
		return
	}
	size := (n + pieces - 1) / pieces
	size = (size + align - 1) / align * align
	theCrew().run(&job{body: body, n: n, size: size, pieces: (n + size - 1) / size})
}

// A crew is GOMAXPROCS-1 helper goroutines that take pieces of parallel
// work alongside the goroutine that asks for it.
//
// Why not a goroutine per piece: on the 2-vCPU virtual machines this was
// tuned on, an idle vCPU takes about 65 µs to wake, longer than a whole
// matrix product of the first layer, so a fresh goroutine arrived when the
// work was already done (measured: two 20 µs halves took 43 µs). Instead a
// helper that has just finished a piece keeps polling for the next job for
// spinFor, as OpenMP runtimes do between parallel regions, and training asks
// for work every few hundred microseconds, so it stays awake. The caller
// takes pieces too: when no helper is awake, it does them all itself and
// waits for nobody. A helper that finds no work for spinFor sleeps on a
// channel and costs nothing.
type crew struct {
	current atomic.Pointer[job]
	wake    chan struct{}
}

// spinFor is how long an idle helper keeps polling before it sleeps.
const spinFor = time.Millisecond

// job is one parallel section: pieces of size elements of [0, n).
type job struct {
	body       func(lo, hi int)
	n, size    int
	pieces     int
	next       atomic.Int64 // the next piece to claim
	unfinished atomic.Int64 // claims in progress: raised before a claim, so
	// the caller, once out of pieces, can wait for it to drop to zero
}

// The crew is process-wide, like the cores it stands for, and started on
// first use; its helpers live as long as the process.
var (
	crewOnce   sync.Once
	sharedCrew *crew
)

func theCrew() *crew {
	crewOnce.Do(func() {
		sharedCrew = &crew{wake: make(chan struct{}, runtime.GOMAXPROCS(0))}
		for i := 1; i < runtime.GOMAXPROCS(0); i++ {
			go sharedCrew.help()
		}
	})
	return sharedCrew
}

// run publishes j, works on it, and returns when every piece is done. While
// another job is running (two goroutines training at once), j runs on the
// caller alone.
func (c *crew) run(j *job) {
	if !c.current.CompareAndSwap(nil, j) {
		j.body(0, j.n)
		return
	}
	select { // rouse a sleeping helper for the jobs to come
	case c.wake <- struct{}{}:
	default:
	}
	j.work()
	for polls := 1; j.unfinished.Load() > 0; polls++ {
		if polls%1024 == 0 { // a helper may have been descheduled mid-piece
			runtime.Gosched()
		}
	}
	c.current.Store(nil)
}

// work claims and runs pieces of j until none is left.
func (j *job) work() {
	for {
		j.unfinished.Add(1)
		p := int(j.next.Add(1) - 1)
		if p >= j.pieces {
			j.unfinished.Add(-1)
			return
		}
		lo := p * j.size
		j.body(lo, min(j.n, lo+j.size))
		j.unfinished.Add(-1)
	}
}

// help is a helper's life: poll for jobs, work on them, sleep when idle.
// The poll is a bare atomic load: calling runtime.Gosched between polls
// made every training step 30% slower, the helper's constant trips through
// the scheduler getting in the way of Gorgonia's own goroutine hand-offs.
func (c *crew) help() {
	var last *job
	idleSince := time.Now()
	for polls := 0; ; polls++ {
		if j := c.current.Load(); j != nil && j != last {
			last = j
			j.work()
			idleSince, polls = time.Now(), 0
			continue
		}
		if polls%64 == 63 && time.Since(idleSince) > spinFor {
			<-c.wake
			idleSince, polls = time.Now(), 0
			continue
		}
	}
}
