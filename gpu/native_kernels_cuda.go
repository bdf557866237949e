//go:build cuda

package gpu

// Launching helpers of the native engine (native_cuda.go): our own kernels
// from gpu/kernels/mlp.cu, cuBLAS matrix products and device memory. Every
// function here must run with the engine's CUDA context current on the
// calling OS thread (nativeEngine.do arranges that).

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"
)

// cudaError presents a driver error in the driver's own words
// ("CUDA_ERROR_OUT_OF_MEMORY: out of memory") and still unwraps to the cu
// value, so errors.Is(err, cu.OutOfMemory) works.
type cudaError struct{ err error }

func (e cudaError) Error() string { return cu.ErrorString(e.err) }
func (e cudaError) Unwrap() error { return e.err }

// check wraps a cu error with what was being done; nil stays nil. The
// engine's do adds which engine it was.
func check(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, cudaError{err})
}

// kernelID names a kernel of gpu/kernels/mlp.cu.
type kernelID int

const (
	kGatherImages kernelID = iota
	kDenseBiasReLU
	kDenseBias
	kCrossEntropy
	kBiasGrad
	kReLUGradBias
	kAdam
	kSGDMomentum
	kCountNonFinite
	kAccumulateScores
	kGatherImagesAt
	kCrossEntropyAt
	kAdamAt
	kFinishStep
	kDenseRows
	kDenseRowsAt
	kLayerGrads
	kFusedUpdate
	kTrainSteps
	kAdamRates
	numKernels
)

// kernelNames are the extern "C" names in mlp.cu, indexed by kernelID.
func kernelNames() [numKernels]string {
	return [numKernels]string{
		kGatherImages:     "gather_images",
		kDenseBiasReLU:    "dense_bias_relu",
		kDenseBias:        "dense_bias",
		kCrossEntropy:     "cross_entropy",
		kBiasGrad:         "bias_grad",
		kReLUGradBias:     "relu_grad_bias",
		kAdam:             "adam",
		kSGDMomentum:      "sgd_momentum",
		kCountNonFinite:   "count_nonfinite",
		kAccumulateScores: "accumulate_scores",
		kGatherImagesAt:   "gather_images_at",
		kCrossEntropyAt:   "cross_entropy_at",
		kAdamAt:           "adam_at",
		kFinishStep:       "finish_step",
		kDenseRows:        "dense_rows",
		kDenseRowsAt:      "dense_rows_at",
		kLayerGrads:       "layer_grads",
		kFusedUpdate:      "fused_update",
		kTrainSteps:       "train_steps",
		kAdamRates:        "adam_rates",
	}
}

// Launch shape: 256 threads a block (COUNT_THREADS in mlp.cu must match),
// and at most maxBlocks blocks; the
// kernels loop (grid-stride) over whatever one launch does not cover.
const (
	threadsPerBlock = 256
	maxBlocks       = 1024
)

// kernelArg is one kernel argument in an 8-byte slot: the driver reads as
// many bytes as the kernel's parameter has (8 for pointers, 4 for int and
// float) from the start of the slot, so keeping every argument in 8 bytes,
// low bytes first (x86-64 is little-endian), makes both reads valid.
type kernelArg uint64

func argPtr(p cu.DevicePtr) kernelArg { return kernelArg(p) }

// argInt passes an int kernel parameter. Callers keep values in int32 range
// (sizes are checked when the engine is made and when a set is uploaded).
func argInt(v int) kernelArg { return kernelArg(uint32(int32(v))) }

func argFloat(v float32) kernelArg { return kernelArg(math.Float32bits(v)) }

// boolArg is a flag for an int kernel parameter: 1 or 0.
func boolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

func argDouble(v float64) kernelArg { return kernelArg(math.Float64bits(v)) }

// launch runs kernel id on the legacy default stream (launchOn).
func (k *kernels) launch(id kernelID, n int, args ...kernelArg) error {
	return k.launchOn(cu.NoStream, id, n, args...)
}

// launchOn runs kernel id on stream s with enough threads for n work items
// (fewer if that would exceed maxBlocks: the kernels loop). n <= 0 launches
// nothing.
func (k *kernels) launchOn(s cu.Stream, id kernelID, n int, args ...kernelArg) error {
	if n <= 0 {
		return nil
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("kernel %s: %d work items exceed int32", kernelNames()[id], n)
	}
	return k.launchBlocksOn(s, id, min((n+threadsPerBlock-1)/threadsPerBlock, maxBlocks), args...)
}

// launchBlocks runs kernel id as blocks blocks of threadsPerBlock threads
// on the legacy default stream.
func (k *kernels) launchBlocks(id kernelID, blocks int, args ...kernelArg) error {
	return k.launchBlocksOn(cu.NoStream, id, blocks, args...)
}

func (k *kernels) launchBlocksOn(s cu.Stream, id kernelID, blocks int, args ...kernelArg) error {
	return k.launchShapeOn(s, id, blocks, threadsPerBlock, args...)
}

// gemmFunc is cuBLAS's column-major C(m×n) = op(A)(m×k) · op(B)(k×n), alpha
// 1, beta 0, on some handle.
type gemmFunc func(what string, tA, tB blas.Transpose, m, n, k int,
	a cu.DevicePtr, lda int, b cu.DevicePtr, ldb int, c cu.DevicePtr, ldc int) error

// lane is where a step's work is queued: kernels and cuBLAS products, in
// order, on one stream. The engines' own lane is the legacy default stream
// with a cu/blas handle; the captured step's is a stream of its own with a
// handle bound to it (capture_cuda.go).
type lane struct {
	k      *kernels
	stream cu.Stream
	gemm   gemmFunc
}

func legacyLane(k *kernels, h *cublas.Standard) lane {
	return lane{k: k, stream: cu.NoStream, gemm: standardGemm(h)}
}

func (l lane) launch(id kernelID, n int, args ...kernelArg) error {
	return l.k.launchOn(l.stream, id, n, args...)
}

func (l lane) launchBlocks(id kernelID, blocks int, args ...kernelArg) error {
	return l.k.launchBlocksOn(l.stream, id, blocks, args...)
}

func (l lane) launchShape(id kernelID, blocks, threads int, args ...kernelArg) error {
	return l.k.launchShapeOn(l.stream, id, blocks, threads, args...)
}

// devMatrix views device memory as the []float32 that cu/blas takes. cu/blas
// passes only &s[0] on to cuBLAS, which reads it as a device address; Go must
// never index such a slice. Gorgonia's CUDA engine hands cu/blas device
// memory the same way. The address is outside the Go heap, so the garbage
// collector ignores it. Reinterpreting the variable's bytes (rather than
// converting a uintptr) is what keeps go vet's unsafeptr check quiet.
func devMatrix(p cu.DevicePtr, n int) []float32 {
	base := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	return unsafe.Slice((*float32)(base), n)
}

// standardGemm is gemmFunc on a cu/blas handle (C is overwritten, never
// read). cu/blas keeps the first error and turns every later call into a
// no-op, so its error is checked after each call; after an error the
// engine refuses further work anyway.
func standardGemm(b *cublas.Standard) gemmFunc {
	return func(what string, tA, tB blas.Transpose, m, n, k int,
		a cu.DevicePtr, lda int, bm cu.DevicePtr, ldb int, c cu.DevicePtr, ldc int) error {
		if m <= 0 || n <= 0 || k <= 0 {
			return fmt.Errorf("sgemm %s: bad sizes m=%d n=%d k=%d", what, m, n, k)
		}
		// The slice lengths only have to be positive: cu/blas reads &s[0].
		b.Sgemm(tA, tB, m, n, k, 1, devMatrix(a, 1), lda, devMatrix(bm, 1), ldb, 0, devMatrix(c, 1), ldc)
		if err := b.Err(); err != nil {
			return fmt.Errorf("sgemm %s: %w", what, err)
		}
		return nil
	}
}

// productNames name each layer's three products in errors, made once
// rather than formatted in every step.
var productNames = [3][3]string{
	{"dense1 forward", "dense1 weight gradient", "dense1 input gradient"},
	{"dense2 forward", "dense2 weight gradient", "dense2 input gradient"},
	{"dense3 forward", "dense3 weight gradient", "dense3 input gradient"},
}

// The three row-major products of a dense layer y = x·W, with x rows×in,
// W in×out and y rows×out. A row-major r×c matrix is, byte for byte, the
// column-major c×r matrix of its transpose, so each row-major product is
// computed as the transposed column-major one (Cᵀ = Bᵀ·Aᵀ).

// matmulForward: y = x·W, computed as yᵀ(out×rows) = Wᵀ(out×in) · xᵀ(in×rows):
//
//	Sgemm(N, N, m=out, n=rows, k=in, A=W lda=out, B=x ldb=in, C=y ldc=out)
func matmulForward(gemm gemmFunc, layer int, x, w, y cu.DevicePtr, rows, in, out int) error {
	return gemm(productNames[layer][0], blas.NoTrans, blas.NoTrans, out, rows, in, w, out, x, in, y, out)
}

// matmulWeightGrad: dW = xᵀ·dy (in×out), computed as
// dWᵀ(out×in) = dyᵀ(out×rows) · x(rows×in), where the stored x is the
// column-major xᵀ (in×rows, ld in), hence Trans:
//
//	Sgemm(N, T, m=out, n=in, k=rows, A=dy lda=out, B=x ldb=in, C=dW ldc=out)
func matmulWeightGrad(gemm gemmFunc, layer int, x, dy, dw cu.DevicePtr, rows, in, out int) error {
	return gemm(productNames[layer][1], blas.NoTrans, blas.Trans, out, in, rows, dy, out, x, in, dw, out)
}

// matmulInputGrad: dx = dy·Wᵀ (rows×in), computed as
// dxᵀ(in×rows) = W(in×out) · dyᵀ(out×rows), where the stored W is the
// column-major Wᵀ (out×in, ld out), hence Trans:
//
//	Sgemm(T, N, m=in, n=rows, k=out, A=W lda=out, B=dy ldb=out, C=dx ldc=in)
func matmulInputGrad(gemm gemmFunc, layer int, dy, w, dx cu.DevicePtr, rows, in, out int) error {
	return gemm(productNames[layer][2], blas.Trans, blas.NoTrans, in, rows, out, w, out, dy, out, dx, in)
}

// deviceMemory owns device allocations and frees them all at once.
type deviceMemory struct {
	ptrs []cu.DevicePtr
}

// alloc allocates bytes of device memory, zeroed (cuMemAlloc does not clear
// memory, and padding between tensors must read as zeros).
func (dm *deviceMemory) alloc(what string, bytes int64) (cu.DevicePtr, error) {
	if bytes <= 0 || bytes%4 != 0 {
		return 0, fmt.Errorf("allocating %s: bad size %d bytes", what, bytes)
	}
	p, err := cu.MemAlloc(bytes)
	if err != nil {
		return 0, check(fmt.Sprintf("allocating %s (%d bytes)", what, bytes), err)
	}
	dm.ptrs = append(dm.ptrs, p)
	if err := cu.MemsetD32(p, 0, bytes/4); err != nil {
		return 0, check("clearing "+what, err)
	}
	return p, nil
}

// free releases p, which must have come from alloc.
func (dm *deviceMemory) free(p cu.DevicePtr) error {
	for i, q := range dm.ptrs {
		if q == p {
			dm.ptrs = append(dm.ptrs[:i], dm.ptrs[i+1:]...)
			return check("freeing device memory", cu.MemFree(p))
		}
	}
	return fmt.Errorf("freeing %v: not allocated here", p)
}

// freeAll releases every allocation, newest first, and reports all failures.
func (dm *deviceMemory) freeAll() error {
	var errs []error
	for i := len(dm.ptrs) - 1; i >= 0; i-- {
		errs = append(errs, check("freeing device memory", cu.MemFree(dm.ptrs[i])))
	}
	dm.ptrs = nil
	return errors.Join(errs...)
}

// upload copies host bytes to device memory at dst.
func upload[T any](what string, dst cu.DevicePtr, src []T) error {
	if len(src) == 0 {
		return nil
	}
	bytes := int64(len(src)) * int64(unsafe.Sizeof(src[0]))
	return check("copying "+what+" to the GPU", cu.MemcpyHtoD(dst, unsafe.Pointer(&src[0]), bytes))
}

// download copies len(dst) values from device memory at src to the host.
// cuMemcpyDtoH waits for all earlier work on the (legacy default) stream, so
// the values are final, and any error of an earlier kernel surfaces here.
func download[T any](what string, dst []T, src cu.DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	bytes := int64(len(dst)) * int64(unsafe.Sizeof(dst[0]))
	return check("copying "+what+" from the GPU", cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), src, bytes))
}
