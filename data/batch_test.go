package data

import (
	"strings"
	"testing"
)

func testSet() *Set {
	s := &Set{Images: make([]byte, 3*ImageSize), Labels: []byte{7, 0, 9}}
	for i := range ImageSize {
		s.Images[i] = 255                       // image 0: white
		s.Images[ImageSize+i] = 0               // image 1: black
		s.Images[2*ImageSize+i] = byte(i % 256) // image 2: ramp
	}
	return s
}

func TestFillBatch(t *testing.T) {
	s := testSet()
	tests := []struct {
		name    string
		indices []int
	}{
		{"one", []int{2}},
		{"all in order", []int{0, 1, 2}},
		{"shuffled with repeats", []int{2, 0, 2, 1}},
		{"none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/float32", func(t *testing.T) { checkBatch[float32](t, s, tt.indices) })
		t.Run(tt.name+"/float64", func(t *testing.T) { checkBatch[float64](t, s, tt.indices) })
	}
}

func checkBatch[T float32 | float64](t *testing.T, s *Set, indices []int) {
	x := make([]T, len(indices)*ImageSize)
	y := make([]T, len(indices)*NumClasses)
	for i := range x {
		x[i] = -1 // stale values from a previous batch must be overwritten
	}
	for i := range y {
		y[i] = -1
	}
	FillBatch(s, indices, x, y)
	for b, idx := range indices {
		for j := range ImageSize {
			want := T(s.Images[idx*ImageSize+j]) / 255
			if got := x[b*ImageSize+j]; got != want {
				t.Fatalf("x[%d][%d] = %v, want %v", b, j, got, want)
			}
		}
		for c := range NumClasses {
			want := T(0)
			if c == int(s.Labels[idx]) {
				want = 1
			}
			if got := y[b*NumClasses+c]; got != want {
				t.Fatalf("y[%d][%d] = %v, want %v (label %d)", b, c, got, want, s.Labels[idx])
			}
		}
	}
	if len(indices) > 0 && (x[0] < 0 || x[0] > 1) {
		t.Fatalf("x[0] = %v out of 0..1", x[0])
	}
}

func TestFillBatchMisuse(t *testing.T) {
	s := testSet()
	tests := []struct {
		name    string
		indices []int
		nx, ny  int
		want    string
	}{
		{"short x", []int{0, 1}, ImageSize, 2 * NumClasses, "len(x)"},
		{"short y", []int{0}, ImageSize, 1, "len(y)"},
		{"index past end", []int{3}, ImageSize, NumClasses, "index 3 out of range"},
		{"negative index", []int{-1}, ImageSize, NumClasses, "index -1 out of range"},
		// Within the prefetch distance: asking for a bad image's cache
		// lines early must not pre-empt the message.
		{"bad index later", []int{0, 1, 7}, 3 * ImageSize, 3 * NumClasses, "index 7 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, tt.want) {
					t.Errorf("panic %q, want one saying %q", msg, tt.want)
				}
			}()
			FillBatch(s, tt.indices, make([]float32, tt.nx), make([]float32, tt.ny))
		})
	}
}

// TestScalePixelsKernel checks the vector kernel against Go's division for
// every byte value, at every offset within a 16-byte step and for lengths
// that end on the kernel's eight-pixel tail.
func TestScalePixelsKernel(t *testing.T) {
	if !hasPixelKernel() {
		t.Skip("no pixel kernel on this machine: FillBatch uses the Go loop")
	}
	for _, n := range []int{0, 8, 16, 24, 256 + 16, ImageSize} {
		for shift := range 16 {
			src := make([]byte, n)
			for j := range src {
				src[j] = byte(j + shift*17)
			}
			dst := make([]float32, n+8)
			for j := range dst {
				dst[j] = -1
			}
			scalePixelsAVX(dst, src)
			for j, p := range src {
				if want := float32(p) / 255; dst[j] != want {
					t.Fatalf("n=%d shift=%d: pixel %d (%d) = %v, want %v", n, shift, j, p, dst[j], want)
				}
			}
			for j := n; j < len(dst); j++ {
				if dst[j] != -1 {
					t.Fatalf("n=%d: wrote dst[%d] past the pixels", n, j)
				}
			}
		}
	}
}
