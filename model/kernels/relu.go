package kernels

import "math"

// BiasReLU adds b to every row of h (rows of len(b) values) and, with relu,
// multiplies each sum by 1 where it is >= 0 and by 0 elsewhere: a negative
// sum becomes -0 and NaN stays NaN, as x ⊙ (x >= 0) does in the stock
// graph, which the ReLU gradient relies on (ReLUGrad). Eight values at a
// time where the vector kernels run, with the same bits.
func BiasReLU(h, b []float32, relu bool) {
	cols := len(b)
	if cols == 0 {
		return
	}
	if len(h)%cols != 0 {
		panic("kernels: BiasReLU: h is not whole rows of len(b)")
	}
	for r := 0; r < len(h); r += cols {
		row := h[r : r+cols]
		done := 0
		if hasAVX() {
			done = cols &^ 7
			biasReLUAVX(row[:done], b[:done], relu)
		}
		for j := done; j < cols; j++ {
			v := row[j] + b[j]
			if relu {
				v *= oneIf(v >= 0)
			}
			row[j] = v
		}
	}
}

// ReLUGrad is dz = dy where the layer's output y (relu(x) as BiasReLU
// leaves it) is +0 or above, and 0·dy elsewhere: a clear sign bit on a
// value up to +Inf (bit patterns 0 to 0x7f800000) marks an input that
// passed. All three slices have len(dy) values.
func ReLUGrad(dz, y, dy []float32) {
	y, dz = y[:len(dy)], dz[:len(dy)]
	done := 0
	if hasAVX() {
		done = len(dy) &^ 7
		reluGradAVX(dz[:done], y[:done], dy[:done])
	}
	for i := done; i < len(dy); i++ {
		dz[i] = oneIf(math.Float32bits(y[i]) <= 0x7f800000) * dy[i]
	}
}

// oneIf is 1 or 0, computed from the comparison without a branch: the
// signs of a layer's pre-activations are a coin toss, and a mispredicted
// branch per element cost more than the rest of the loop.
func oneIf(on bool) float32 {
	var bits uint32
	if on {
		bits = 0x3f800000 // 1.0
	}
	return math.Float32frombits(bits)
}
