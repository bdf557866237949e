// Package gpu decides where the training graph runs. It is the only package
// that knows about CUDA: the cuda build tag appears in this folder and nowhere
// else, so model/ and cmd/train ask this package for a Device and stay the
// same in both builds.
package gpu

import "mnist/model"

// Device is an opened execution device. Close it when training is done.
type Device interface {
	// Name is a short human-readable label, e.g. "cpu" or "cuda:0 NVIDIA H100".
	Name() string
	// CUDA reports whether the graph runs on an NVIDIA GPU.
	CUDA() bool
	// NewBackend compiles the network for cfg to run on this device.
	NewBackend(cfg model.Config) (model.Backend, error)
	// Close releases the device.
	Close() error
}

// cpuDevice runs the graph on the host with Gorgonia's default engine.
type cpuDevice struct{}

// CPU returns the host device. It is always available.
func CPU() Device { return cpuDevice{} }

func (cpuDevice) Name() string { return "cpu" }
func (cpuDevice) CUDA() bool   { return false }

// NewBackend builds the graph from the fused CPU ops (model.WithFusedOps)
// and compiles only the instructions the results need
// (model.WithPrunedProgram). Both keep the results bit for bit. The cuda
// build's Gorgonia engine keeps the stock ops and the whole program, the
// form verified on a GPU.
func (cpuDevice) NewBackend(cfg model.Config) (model.Backend, error) {
	return model.NewGraphBackend(cfg, model.WithPrunedProgram(), model.WithFusedOps())
}
func (cpuDevice) Close() error { return nil }
