// Package gpu decides where the training graph runs. It is the only package
// that knows about CUDA: the cuda build tag appears in this folder and nowhere
// else, so model/ and cmd/train ask this package for a Device and stay the
// same in both builds.
package gpu

import (
	"fmt"
	"strings"

	"mnist/model"
)

// The engines, chosen with -engine:
//
//	gorgonia   Gorgonia's tape machine runs the network's graph (the
//	           default; on the CPU, and in the cuda build on the GPU)
//	native     the cuda build's own engine on cu and cuBLAS (native_cuda.go)
//	cudagraph  the native engine with each training step replayed from a
//	           captured CUDA graph (captured_cuda.go)
//	fused      cudagraph with a step of fused kernels: five launches, not
//	           about twenty (fused_cuda.go)
//	persistent the native engine with many training steps to a launch of
//	           one kernel that stays on the GPU (persistent_cuda.go)
const (
	EngineGorgonia   = "gorgonia"
	EngineNative     = "native"
	EngineCUDAGraph  = "cudagraph"
	EngineFused      = "fused"
	EnginePersistent = "persistent"
)

// EngineNames lists the engines, the default first.
func EngineNames() []string {
	return []string{EngineGorgonia, EngineNative, EngineCUDAGraph, EngineFused, EnginePersistent}
}

// CheckEngine reports an engine name this build does not have.
func CheckEngine(name string) error {
	switch name {
	case EngineGorgonia:
		return nil
	case EngineNative, EngineCUDAGraph, EngineFused, EnginePersistent:
		if BuiltWithCUDA {
			return nil
		}
		return fmt.Errorf("-engine %s runs on a GPU: build with `make build-cuda`; the CPU build has one engine, %s", name, EngineGorgonia)
	}
	return fmt.Errorf("unknown engine %q: use %s", name, strings.Join(EngineNames(), ", "))
}

// Device is an opened execution device. Close it when training is done.
type Device interface {
	// Name is a short human-readable label, e.g. "cpu" or "cuda:0 NVIDIA H100".
	Name() string
	// CUDA reports whether the graph runs on an NVIDIA GPU.
	CUDA() bool
	// NewEngine compiles the network for cfg to run on this device.
	NewEngine(cfg model.Config) (model.Engine, error)
	// Close releases the device.
	Close() error
}

// cpuDevice runs the graph on the host with Gorgonia's default engine.
type cpuDevice struct{}

// CPU returns the host device. It is always available.
func CPU() Device { return cpuDevice{} }

func (cpuDevice) Name() string { return "cpu" }
func (cpuDevice) CUDA() bool   { return false }

// NewEngine builds the graph from the fused CPU ops (model.WithFusedOps)
// and compiles only the instructions the results need
// (model.WithPrunedProgram). Both keep the results bit for bit. The cuda
// build's Gorgonia engine keeps the stock ops and the whole program, the
// form verified on a GPU.
func (cpuDevice) NewEngine(cfg model.Config) (model.Engine, error) {
	return model.NewGraphEngine(cfg, model.WithPrunedProgram(), model.WithFusedOps())
}
func (cpuDevice) Close() error { return nil }
