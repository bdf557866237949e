package kernels

import (
	"sync"
	"sync/atomic"
	"time"
)

// A Crew is a set of helper goroutines that take pieces of parallel work
// alongside the goroutine that asks for it. A nil *Crew is valid and runs
// everything on the caller.
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
type Crew struct {
	helpers int
	current atomic.Pointer[job]
	wake    chan struct{}
	quit    chan struct{}
	closed  atomic.Bool
	once    sync.Once
	// finished is signalled by a helper that ends the last claim of a job
	// while the caller sleeps waiting for it (see run).
	finished chan struct{}
	// scratch holds *[]float32 buffers for the products' transposes, so
	// that a training step does not allocate (and the runtime zero) them.
	scratch sync.Pool
}

// spinFor is how long an idle helper keeps polling before it sleeps.
const spinFor = time.Millisecond

// NewCrew starts helpers goroutines (none for helpers <= 0). One less than
// runtime.GOMAXPROCS(0) uses every core, the caller being the last. Close
// stops them.
func NewCrew(helpers int) *Crew {
	c := &Crew{helpers: max(helpers, 0), wake: make(chan struct{}, max(helpers, 1)), quit: make(chan struct{}),
		finished: make(chan struct{}, 1)}
	for i := 0; i < c.helpers; i++ {
		go c.help()
	}
	return c
}

// Close stops the helpers; work asked of the crew afterwards runs on the
// caller. It is safe to call more than once.
func (c *Crew) Close() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		c.closed.Store(true)
		close(c.quit)
	})
}

// buffer returns scratch memory for n float32s, of undefined content;
// release gives it back. A nil crew allocates.
func (c *Crew) buffer(n int) *[]float32 {
	if c != nil {
		if b, ok := c.scratch.Get().(*[]float32); ok && cap(*b) >= n {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]float32, n)
	return &b
}

func (c *Crew) release(b *[]float32) {
	if c != nil {
		c.scratch.Put(b)
	}
}

// split runs body over [0, n) in contiguous pieces, each a multiple of align
// long (but the last) and at least minPiece long, sharing them with the
// helpers. It returns when all pieces are done.
func (c *Crew) split(n, align, minPiece int, body func(lo, hi int)) {
	workers := 1
	if c != nil && !c.closed.Load() {
		workers += c.helpers
	}
	pieces := min(workers, n/max(minPiece, 1))
	if pieces <= 1 {
		body(0, n)
		return
	}
	size := (n + pieces - 1) / pieces
	size = (size + align - 1) / align * align
	c.run(&job{body: body, n: n, size: size, pieces: (n + size - 1) / size})
}

// job is one parallel section: pieces of size elements of [0, n).
type job struct {
	body       func(lo, hi int)
	n, size    int
	pieces     int
	next       atomic.Int64 // the next piece to claim
	unfinished atomic.Int64 // claims in progress: raised before a claim, so
	// the caller, once out of pieces, can wait for it to drop to zero
	sleeping atomic.Bool   // the caller has stopped polling and waits on finished
	finished chan struct{} // the crew's
}

// run publishes j, works on it, and returns when every piece is done. While
// another job is running (two goroutines asking at once), j runs on the
// caller alone.
//
// Once out of pieces, the caller polls for the helpers' last claims to end,
// but only for waitSpin: on a machine busier than its cores, the operating
// system may have stopped a helper in the middle of a piece, and a caller
// that kept polling would hold the very core that helper needs, for a whole
// time slice (measured: a 256-image epoch took 2.4 s instead of 0.4 s at a
// load of 8 on 2 cores). It then sleeps, and the helper that ends the last
// claim wakes it.
func (c *Crew) run(j *job) {
	j.finished = c.finished
	if !c.current.CompareAndSwap(nil, j) {
		j.body(0, j.n)
		return
	}
	select { // rouse a sleeping helper for the jobs to come
	case c.wake <- struct{}{}:
	default:
	}
	j.work()
	var start time.Time
	for polls := 0; j.unfinished.Load() > 0; polls++ {
		if polls%256 != 255 {
			continue
		}
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) > waitSpin {
			j.sleep()
			break
		}
	}
	c.current.Store(nil)
}

// waitSpin is how long the caller polls for helpers still at work before it
// sleeps.
const waitSpin = 50 * time.Microsecond

// sleep waits on the finished channel until no claim is in progress. A token
// left over from an earlier job only makes it check again.
func (j *job) sleep() {
	j.sleeping.Store(true)
	for j.unfinished.Load() > 0 {
		<-j.finished
	}
}

// done ends a claim; the one that ends the last while the caller sleeps
// wakes it.
func (j *job) done() {
	if j.unfinished.Add(-1) == 0 && j.sleeping.Load() {
		select {
		case j.finished <- struct{}{}:
		default:
		}
	}
}

// work claims and runs pieces of j until none is left.
func (j *job) work() {
	for {
		j.unfinished.Add(1)
		p := int(j.next.Add(1) - 1)
		if p >= j.pieces {
			j.done()
			return
		}
		lo := p * j.size
		j.body(lo, min(j.n, lo+j.size))
		j.done()
	}
}

// help is a helper's life: poll for jobs, work on them, sleep when idle,
// return when the crew is closed. The poll is a bare atomic load: calling
// runtime.Gosched between polls made every training step 30% slower, the
// helper's constant trips through the scheduler getting in the way of
// Gorgonia's own goroutine hand-offs.
func (c *Crew) help() {
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
			select {
			case <-c.wake:
			case <-c.quit:
				return
			}
			idleSince, polls = time.Now(), 0
		}
	}
}
