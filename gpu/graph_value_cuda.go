//go:build cuda

package gpu

import (
	"fmt"

	"gorgonia.org/cu"
	"gorgonia.org/tensor"
)

// deviceBuffer is a float32 matrix (or scalar) in device memory that the
// Gorgonia engine's run owns, as the Gorgonia value an op hands to the
// graph: a parameter, its gradient, the logits' gradient, or any op's
// output. It is deliberately not a
// *tensor.Dense: the tape machine's Reset gives every *tensor.Dense it holds
// back to the tensor package's pool, from which the next run's allocations
// borrow and overwrite it, so a Dense over our memory could not outlive a
// run and a new one had to be made each time (13 a step, the largest
// allocation in a step's host time). Gorgonia pools nothing else, so one
// deviceBuffer per buffer, made once, serves every run.
//
// The ops read only its address; nothing on the host reads its elements.
type deviceBuffer struct {
	ptr   cu.DevicePtr
	shape tensor.Shape
}

func newDeviceBuffer(p cu.DevicePtr, shape tensor.Shape) *deviceBuffer {
	return &deviceBuffer{ptr: p, shape: shape}
}

// bufferBytes is what a value of this shape takes (a scalar: one float32).
func bufferBytes(shape tensor.Shape) int64 { return 4 * int64(max(1, shape.TotalSize())) }

// Shape is the buffer's own slice; Gorgonia only compares it.
func (b *deviceBuffer) Shape() tensor.Shape { return b.shape }
func (b *deviceBuffer) Size() int           { return max(1, b.shape.TotalSize()) }
func (b *deviceBuffer) Dtype() tensor.Dtype { return tensor.Float32 }
func (b *deviceBuffer) Uintptr() uintptr    { return uintptr(b.ptr) }
func (b *deviceBuffer) MemSize() uintptr    { return uintptr(4 * b.Size()) }

// Data is the device address: the elements are not in host memory.
func (b *deviceBuffer) Data() interface{} { return b.ptr }

func (b *deviceBuffer) Format(s fmt.State, _ rune) {
	fmt.Fprintf(s, "device float32%v at %#x", b.shape, uintptr(b.ptr))
}
