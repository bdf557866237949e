//go:build !amd64

package data

func hasPixelKernel() bool { return false }

func scalePixelsAVX(dst []float32, src []byte) {
	panic("data: no pixel kernel on this architecture")
}

func prefetchBytes(p []byte) {}
