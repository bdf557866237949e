package kernels

// transpose writes the cols×rows transpose of the rows×cols matrix src
// (leading dimension lds) into dst (leading dimension ldd): dst[c·ldd + r]
// = src[r·lds + c]. Whole 8×8 blocks go through the vector kernel; the
// edges are copied one value at a time.
func transpose(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	// Bounds checked once here; the kernel trusts them.
	_ = src[(rows-1)*lds+cols-1]
	_ = dst[(cols-1)*ldd+rows-1]
	done := 0 // rows moved in whole strips of eight
	if hasAVX() && cols >= 8 {
		blocks := cols / 8
		for ; done+8 <= rows; done += 8 {
			transpose8AVX(dst[done:], ldd, src[done*lds:], lds, blocks)
		}
		for c := blocks * 8; c < cols; c++ { // the columns right of the blocks
			for r := 0; r < done; r++ {
				dst[c*ldd+r] = src[r*lds+c]
			}
		}
	}
	for r := done; r < rows; r++ {
		for c, v := range src[r*lds : r*lds+cols] {
			dst[c*ldd+r] = v
		}
	}
}
