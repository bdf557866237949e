package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

func TestAdamMatchesScalarBitForBit(t *testing.T) {
	crew := NewCrew(1)
	defer crew.Close()
	r := rand.New(rand.NewPCG(7, 8))
	k := NewAdamConsts(0.001*math.Sqrt(1-math.Pow(0.999, 3))/(1-math.Pow(0.9, 3)), 0.9, 0.999, 1e-7)
	for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 128, 8192, 100352, 100355} {
		w := make([]float32, n)
		g := make([]float32, n)
		m := make([]float32, n)
		v := make([]float32, n)
		for i := range w {
			w[i] = float32(r.NormFloat64() * 0.05)
			if i%5 != 0 { // some gradients exactly 0, as for dead pixels
				g[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(7)-5)))
			}
			m[i] = float32(r.NormFloat64() * 1e-3)
			v[i] = float32(r.Float64() * 1e-6)
			switch i % 13 { // the subnormal range and its edge, where the kernel flushes
			case 1:
				m[i] = float32(r.NormFloat64() * 1e-39)
			case 2:
				m[i] = float32(r.NormFloat64() * 1.3e-38)
			case 3:
				g[i] = float32(r.NormFloat64() * 1e-40)
			case 4:
				w[i] = float32(r.NormFloat64() * 1e-39)
			case 5:
				g[i] = float32(r.NormFloat64() * 1e-20) // g² is subnormal
			}
		}
		wantW, wantM, wantV := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
		for step := 0; step < 3; step++ {
			AdamScalar(wantW, g, wantM, wantV, k)
			Adam(crew, w, g, m, v, k)
		}
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(wantW[i]) || math.Float32bits(m[i]) != math.Float32bits(wantM[i]) || math.Float32bits(v[i]) != math.Float32bits(wantV[i]) {
				t.Fatalf("n=%d, element %d: got w=%v m=%v v=%v, scalar loop gives w=%v m=%v v=%v",
					n, i, w[i], m[i], v[i], wantW[i], wantM[i], wantV[i])
			}
		}
	}
}

// TestAdamKernelsMatchScalar runs each vector kernel this machine has on its
// own (the dispatcher above uses the widest), against the scalar loop.
func TestAdamKernelsMatchScalar(t *testing.T) {
	kernels := map[string]func(w, g, m, v []float32, k *adamConsts32){}
	if hasAVX() {
		kernels["avx2"] = adamF32AVX
	}
	if hasAVX512() {
		kernels["avx512"] = adamF32AVX512
	}
	if len(kernels) == 0 {
		t.Skip("no vector kernels on this machine")
	}
	r := rand.New(rand.NewPCG(9, 10))
	const n = 4096
	k := NewAdamConsts(0.001*math.Sqrt(1-math.Pow(0.999, 2))/(1-math.Pow(0.9, 2)), 0.9, 0.999, 1e-7)
	k32 := k.float32s()
	w, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.05)
		g[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(9)-6)))
		m[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-38)))
		v[i] = float32(r.Float64() * 1e-6)
	}
	for name, kernel := range kernels {
		gotW, gotM, gotV := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
		wantW, wantM, wantV := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
		kernel(gotW, g, gotM, gotV, &k32)
		AdamScalar(wantW, g, wantM, wantV, k)
		for i := range w {
			if math.Float32bits(gotW[i]) != math.Float32bits(wantW[i]) || math.Float32bits(gotM[i]) != math.Float32bits(wantM[i]) || math.Float32bits(gotV[i]) != math.Float32bits(wantV[i]) {
				t.Fatalf("%s, element %d: got w=%v m=%v v=%v, scalar loop gives w=%v m=%v v=%v",
					name, i, gotW[i], gotM[i], gotV[i], wantW[i], wantM[i], wantV[i])
			}
		}
	}
}

// TestAdamFlushesSubnormals checks the documented flush to zero, and that
// the kernel gives the caller its floating-point mode back.
func TestAdamFlushesSubnormals(t *testing.T) {
	// MXCSR is per thread: stay on the one the kernel runs on, so that a
	// mode left behind would show below.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := 64
	w, g := make([]float32, n), make([]float32, n)
	m, v := make([]float32, n), make([]float32, n)
	for i := range m {
		m[i] = 1.25e-38 // normal; 0.9 of it is not
		v[i] = 1
	}
	Adam(nil, w, g, m, v, NewAdamConsts(1e-3, 0.9, 0.999, 1e-7))
	for i := range m {
		if m[i] != 0 {
			t.Fatalf("m[%d] = %g after decaying into the subnormal range, want 0", i, m[i])
		}
	}
	// Plain Go code after the kernel must still see gradual underflow.
	half := []float32{0.5}
	if x := m[0] + 2e-38*half[0]; x == 0 {
		t.Errorf("2e-38 * 0.5 = 0 after Adam: the kernel left subnormals flushed")
	}
}

func TestAdamFloat64(t *testing.T) {
	k := NewAdamConsts(0.1, 0.9, 0.999, 1e-7)
	w, g := []float64{1, 2}, []float64{0.5, -0.5}
	m, v := make([]float64, 2), make([]float64, 2)
	Adam(nil, w, g, m, v, k)
	// First step from zero moments: m = 0.05, v = 0.00025, so the step is
	// 0.1·0.05/(sqrt(0.00025)+1e-7) ≈ 0.316 in the gradient's direction.
	if math.Abs(w[0]-(1-0.31620)) > 1e-4 || math.Abs(w[1]-(2+0.31620)) > 1e-4 {
		t.Errorf("w = %v, want about [0.6838 2.3162]", w)
	}
}

func TestSplitCoversEveryIndexOnce(t *testing.T) {
	crew := NewCrew(3)
	defer crew.Close()
	for _, tc := range []struct{ n, align, minPiece int }{
		{0, 1, 1}, {1, 1, 1}, {10, 4, 1}, {32, 1, 16}, {33, 4, 2}, {100352, 4, 1 << 14}, {15, 1, 16},
	} {
		seen := make([]int32, tc.n)
		crew.split(tc.n, tc.align, tc.minPiece, func(lo, hi int) {
			if lo%tc.align != 0 {
				t.Errorf("n=%d: piece starts at %d, not a multiple of %d", tc.n, lo, tc.align)
			}
			for i := lo; i < hi; i++ {
				seen[i]++ // pieces are disjoint, so no two goroutines share an index
			}
		})
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("n=%d: index %d covered %d times", tc.n, i, s)
			}
		}
	}
}

func BenchmarkAdam(b *testing.B) {
	const n = 100352 // dense1.weight
	w, g := make([]float32, n), make([]float32, n)
	m, v := make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(i%7) * 1e-3
	}
	k := NewAdamConsts(1e-3, 0.9, 0.999, 1e-7)
	crew := NewCrew(runtime.GOMAXPROCS(0) - 1)
	defer crew.Close()
	b.Run("scalar", func(b *testing.B) {
		for b.Loop() {
			AdamScalar(w, g, m, v, k)
		}
	})
	b.Run("kernels", func(b *testing.B) {
		for b.Loop() {
			Adam(crew, w, g, m, v, k)
		}
	})
}

// TestSplitFromManyGoroutines runs parallel sections from several
// goroutines at once, as parallel tests do: each must still cover its range
// exactly once (run with -race).
func TestSplitFromManyGoroutines(t *testing.T) {
	crew := NewCrew(2)
	defer crew.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 200; rep++ {
				n := 1000 + rep
				seen := make([]int32, n)
				crew.split(n, 4, 16, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						seen[i]++
					}
				})
				for i, s := range seen {
					if s != 1 {
						t.Errorf("index %d of %d covered %d times", i, n, s)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestClosedCrewRunsOnCaller checks that work still gets done, by the
// caller, after Close, and on a nil crew.
func TestClosedCrewRunsOnCaller(t *testing.T) {
	crew := NewCrew(2)
	crew.Close()
	crew.Close()
	for _, c := range []*Crew{crew, nil} {
		sum := 0
		c.split(1000, 1, 10, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				sum += i // no other goroutine runs a piece: no race
			}
		})
		if sum != 999*1000/2 {
			t.Errorf("sum %d, want %d", sum, 999*1000/2)
		}
	}
}
