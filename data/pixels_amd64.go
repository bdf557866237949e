package data

import "golang.org/x/sys/cpu"

// hasPixelKernel reports whether scalePixelsAVX can run here.
func hasPixelKernel() bool { return cpu.X86.HasAVX2 }

// Implemented in pixels_amd64.s.
//
//go:noescape
func scalePixelsAVX(dst []float32, src []byte)

//go:noescape
func prefetchBytes(p []byte)
