package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestCollectKeepsNonzerosInOrder checks the vector scan against the
// definition: every alpha·a[j] that is not zero, NaN included and -0
// excluded, numbered from base, in order.
func TestCollectKeepsNonzerosInOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	for _, n := range []int{0, 1, 7, 8, 9, 16, 28, 784, termChunk} {
		for _, alpha := range []float32{1, -0.5, 0} {
			t.Run(fmt.Sprintf("n%d/alpha%g", n, alpha), func(t *testing.T) {
				a := make([]float32, n)
				for j := range a {
					switch r.IntN(6) {
					case 0:
						a[j] = float32(r.NormFloat64())
					case 1:
						a[j] = nan
					case 2:
						a[j] = negZero
					}
				}
				base := r.IntN(1000)
				var terms termList
				ls, vs := terms.collect(a, alpha, base)
				checkTerms(t, "collect", a, alpha, base, ls, vs)
				// Each vector kernel on its own, over the part it takes.
				for name, kernel := range collectKernels() {
					var own termList
					whole := n &^ 15
					count := kernel(a[:whole], alpha, int32(base), own.ls[:], own.vs[:])
					checkTerms(t, name, a[:whole], alpha, base, own.ls[:count], own.vs[:count])
				}
			})
		}
	}
}

// collectKernels are the vector kernels of collect this machine can run.
func collectKernels() map[string]func(a []float32, alpha float32, base int32, ls []int32, vs []float32) int {
	k := map[string]func(a []float32, alpha float32, base int32, ls []int32, vs []float32) int{}
	if hasAVX() {
		k["avx2"] = collectAVX
	}
	if hasAVX512() {
		k["avx512"] = collectAVX512
	}
	return k
}

// checkTerms checks ls and vs against the definition of collect's result.
func checkTerms(t *testing.T, name string, a []float32, alpha float32, base int, ls []int32, vs []float32) {
	t.Helper()
	q := 0
	for j, x := range a {
		v := alpha * x
		if v == 0 {
			continue
		}
		if q >= len(ls) || int(ls[q]) != base+j || math.Float32bits(vs[q]) != math.Float32bits(v) {
			t.Fatalf("%s: term %d: got %v, want index %d value %v", name, q, termAt(ls, vs, q), base+j, v)
		}
		q++
	}
	if q != len(ls) {
		t.Fatalf("%s: %d terms, want %d", name, len(ls), q)
	}
}

func termAt(ls []int32, vs []float32, q int) string {
	if q >= len(ls) {
		return "nothing"
	}
	return fmt.Sprintf("index %d value %v", ls[q], vs[q])
}

func TestLeftPack(t *testing.T) {
	for _, tc := range []struct {
		mask int
		want uint64
	}{{0, 0}, {1, 0}, {0b10, 1}, {0b1010_0101, 0x07_05_02_00}, {0xff, 0x07_06_05_04_03_02_01_00}} {
		if got := leftPack[tc.mask]; got != tc.want {
			t.Errorf("leftPack[%08b] = %#x, want %#x", tc.mask, got, tc.want)
		}
	}
}

// rowKernels are the vector kernels of accumulateRow this machine can run,
// so that each is tested whichever the dispatcher picks.
func rowKernels() map[string]func(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool) {
	k := map[string]func(c, b []float32, ldb int, ls []int32, vs []float32, fromZero bool){}
	if hasAVX() {
		k["avx2"] = accumulateRowAVX
	}
	if hasAVX512() {
		k["avx512"] = accumulateRowAVX512
	}
	return k
}

// TestAccumulateRowMatchesGeneric checks the register-blocked kernels (128,
// 64, 16 and 8 columns, and the masked tails) and the dispatcher against
// the plain axpy loop that machines without AVX2 run, and that nothing past
// the row is written.
func TestAccumulateRowMatchesGeneric(t *testing.T) {
	kernels := rowKernels()
	kernels["dispatched"] = accumulateRow
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 2, 3, 5, 7, 8, 10, 15, 16, 17, 31, 64, 65, 71, 80, 128, 143, 192, 200, 256, 300} {
		k, ldb := 50, n+3
		b := sparseMatrix(r, k, n, ldb, 0)
		var ls []int32
		var vs []float32
		for l := 0; l < k; l += 1 + r.IntN(3) {
			ls = append(ls, int32(l))
			vs = append(vs, float32(r.NormFloat64()))
		}
		c0 := sparseMatrix(r, 1, n, n, 0)
		for name, kernel := range kernels {
			for _, fromZero := range []bool{false, true} {
				const sentinel = 12345
				padded := append(append([]float32(nil), c0...), sentinel)
				got := padded[:n]
				want := append([]float32(nil), c0...)
				kernel(got, b, ldb, ls, vs, fromZero)
				if padded[n] != sentinel {
					t.Fatalf("%s n=%d fromZero=%v: the value after the row became %v", name, n, fromZero, padded[n])
				}
				if fromZero {
					clear(want)
				}
				accumulateRowGeneric(want, b, ldb, ls, vs)
				for j := range want {
					if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
						t.Fatalf("%s n=%d fromZero=%v: c[%d] = %v, want %v", name, n, fromZero, j, got[j], want[j])
					}
				}
			}
		}
	}
}
