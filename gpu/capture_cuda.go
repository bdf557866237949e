//go:build cuda

package gpu

// A small cgo layer for what gorgonia.org/cu v0.9.6 lacks: capturing the
// work queued on a stream into a CUDA graph and replaying it
// (cuStreamBeginCapture, cuStreamEndCapture, cuGraphInstantiateWithFlags,
// cuGraphLaunch), and a cuBLAS handle bound to that stream (cu/blas keeps
// its handle private and has no cublasSetStream). The flags come from
// scripts/build-cuda.sh (CGO_CFLAGS, CGO_LDFLAGS), as for gorgonia.org/cu.

/*
#cgo LDFLAGS: -lcuda -lcublas
#include <cuda.h>
#include <cublas_v2.h>

static CUresult mnistBeginCapture(CUstream s) {
	return cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
}

static CUresult mnistEndCapture(CUstream s, CUgraph *g, CUgraphExec *exec) {
	CUresult r = cuStreamEndCapture(s, g);
	if (r != CUDA_SUCCESS) {
		return r;
	}
	r = cuGraphInstantiateWithFlags(exec, *g, 0);
	if (r != CUDA_SUCCESS) {
		cuGraphDestroy(*g);
	}
	return r;
}

static cublasStatus_t mnistBlasOnStream(cublasHandle_t *h, CUstream s, CUdeviceptr workspace, size_t bytes) {
	cublasStatus_t st = cublasCreate(h);
	if (st != CUBLAS_STATUS_SUCCESS) {
		return st;
	}
	st = cublasSetStream(*h, (cudaStream_t)s);
	if (st == CUBLAS_STATUS_SUCCESS) {
		// A workspace of our own: cuBLAS must not allocate while a stream
		// is being captured.
		st = cublasSetWorkspace(*h, (void *)workspace, bytes);
	}
	if (st != CUBLAS_STATUS_SUCCESS) {
		cublasDestroy(*h);
	}
	return st;
}

static cublasStatus_t mnistSgemm(cublasHandle_t h, int transA, int transB, int m, int n, int k,
		CUdeviceptr a, int lda, CUdeviceptr b, int ldb, CUdeviceptr c, int ldc) {
	const float one = 1.0f, zero = 0.0f;
	return cublasSgemm(h, transA ? CUBLAS_OP_T : CUBLAS_OP_N, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
		m, n, k, &one, (const float *)a, lda, (const float *)b, ldb, &zero, (float *)c, ldc);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gorgonia.org/cu"
	cublas "gorgonia.org/cu/blas"
)

// cStream is the driver handle of a cu.Stream (cgo types are per package,
// so it is converted through its bytes).
func cStream(s cu.Stream) C.CUstream {
	h := s.C()
	return *(*C.CUstream)(unsafe.Pointer(&h))
}

// replay is a captured graph, ready to launch.
type replay struct {
	graph C.CUgraph
	exec  C.CUgraphExec
}

// capture records everything fn queues on stream s (nothing runs) and
// instantiates it. The context must be current on this (locked) thread.
// Every failure, fn's own included, is a captureError: nothing has run on
// the device.
func capture(s cu.Stream, fn func() error) (*replay, error) {
	if err := result(C.mnistBeginCapture(cStream(s))); err != nil {
		return nil, captureError{check("beginning a stream capture", err)}
	}
	fnErr := fn()
	r := &replay{}
	err := result(C.mnistEndCapture(cStream(s), &r.graph, &r.exec))
	if fnErr != nil {
		if err == nil {
			r.destroy()
		}
		return nil, captureError{fnErr}
	}
	if err != nil {
		return nil, captureError{check("ending the capture and instantiating the graph", err)}
	}
	return r, nil
}

// captureError is a failed capture: the work was being recorded, not run,
// so the device's state is as it was before.
type captureError struct{ err error }

func (e captureError) Error() string { return "capturing a CUDA graph: " + e.err.Error() }
func (e captureError) Unwrap() error { return e.err }

// launch queues one replay of the graph on s.
func (r *replay) launch(s cu.Stream) error {
	return check("launching the captured step", result(C.cuGraphLaunch(r.exec, cStream(s))))
}

func (r *replay) destroy() error {
	if r == nil {
		return nil
	}
	err := result(C.cuGraphExecDestroy(r.exec))
	if err2 := result(C.cuGraphDestroy(r.graph)); err == nil {
		err = err2
	}
	return check("destroying the captured graph", err)
}

// result turns a driver status into an error in the driver's words.
func result(r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	return driverError(r)
}

// driverError is a status of a driver call made here rather than in cu.
type driverError C.CUresult

func (e driverError) Error() string {
	var name, text *C.char
	C.cuGetErrorName(C.CUresult(e), &name)
	C.cuGetErrorString(C.CUresult(e), &text)
	if name == nil || text == nil {
		return fmt.Sprintf("CUDA error %d", int(e))
	}
	return C.GoString(name) + ": " + C.GoString(text)
}

// streamBLAS is a cuBLAS handle whose work goes to one stream, with its
// own workspace.
type streamBLAS struct{ h C.cublasHandle_t }

// blasWorkspaceBytes is the workspace cuBLAS gets; NVIDIA's advice for
// graph capture on Hopper is 32 MiB (4 MiB before it).
const blasWorkspaceBytes = 32 << 20

func newStreamBLAS(s cu.Stream, workspace cu.DevicePtr) (*streamBLAS, error) {
	b := &streamBLAS{}
	if st := C.mnistBlasOnStream(&b.h, cStream(s), C.CUdeviceptr(workspace), C.size_t(blasWorkspaceBytes)); st != C.CUBLAS_STATUS_SUCCESS {
		return nil, fmt.Errorf("creating a cuBLAS handle on the capture stream: %w", cublas.Status(st))
	}
	return b, nil
}

func (b *streamBLAS) close() error {
	if b == nil {
		return nil
	}
	if st := C.cublasDestroy(b.h); st != C.CUBLAS_STATUS_SUCCESS {
		return fmt.Errorf("destroying the capture stream's cuBLAS handle: %w", cublas.Status(st))
	}
	return nil
}

// gemm is gemm (native_kernels_cuda.go) on this handle's stream.
func (b *streamBLAS) gemm(what string, tA, tB blas.Transpose, m, n, k int,
	a cu.DevicePtr, lda int, bm cu.DevicePtr, ldb int, c cu.DevicePtr, ldc int) error {
	st := C.mnistSgemm(b.h, boolInt(tA == blas.Trans), boolInt(tB == blas.Trans), C.int(m), C.int(n), C.int(k),
		C.CUdeviceptr(a), C.int(lda), C.CUdeviceptr(bm), C.int(ldb), C.CUdeviceptr(c), C.int(ldc))
	if st != C.CUBLAS_STATUS_SUCCESS {
		// A cublas.Status, as the legacy lane's errors are: the engine
		// counts it as a device error (call marks itself broken).
		return fmt.Errorf("sgemm %s: %w", what, cublas.Status(st))
	}
	return nil
}

func boolInt(b bool) C.int { return C.int(boolArg(b)) }
