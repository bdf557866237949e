// nullcuda.c - a CUDA driver and cuBLAS that do no GPU work, for measuring
// what the cuda build costs on the host.
//
// Built by scripts/host-overhead.sh as libcuda.so.1 and libcublas.so.11
// (two names of one library) and put in front of the real ones with
// LD_LIBRARY_PATH. Then bin/train-cuda starts and trains on a machine
// without a GPU: device memory is host memory, copies and memsets are
// memcpy and memset, kernel launches, GEMMs and graph launches return at
// once without computing anything. What is left is the host side of a
// training step: Go, Gorgonia's tape machine, cgo, our engines. The
// numbers it trains to are meaningless; its time per step is the host's
// share of a real step, less what a real driver spends inside each call
// (about 2 to 5 us a launch on current GPUs).
//
// Every call is counted. With NULLCUDA_COUNTS=FILE the counters live in
// FILE (mmap'd), so they survive the process however it ends (Go's os.Exit
// runs no atexit handlers); scripts/host-overhead.sh reads them to report
// launches and copies per training step.
//
// This is a measuring tool, never part of the product.
#include <cuda.h>
#include <cublas_v2.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// The counters, in the order scripts/host-overhead.sh reads them.
enum {
	nLaunch,      // cuLaunchKernel
	nGemm,        // cublasSgemm
	nGraphLaunch, // cuGraphLaunch
	nHtoD,        // host to device copies
	nDtoH,        // device to host copies
	nDtoD,        // device to device copies
	nMemset,      // memsets
	nSync,        // stream, event and context synchronisations
	nAlloc,       // cuMemAlloc
	nFree,        // cuMemFree
	nCtxCurrent,  // cuCtxSetCurrent
	nCounters
};

static volatile uint64_t local_counts[nCounters];
static volatile uint64_t *counts = local_counts;

__attribute__((constructor)) static void open_counts(void) {
	const char *path = getenv("NULLCUDA_COUNTS");
	if (path == NULL || *path == 0) {
		return;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		return;
	}
	size_t size = sizeof(uint64_t) * nCounters;
	if (ftruncate(fd, (off_t)size) == 0) {
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			counts = p;
		}
	}
	close(fd);
}

static void count(int which) { __atomic_add_fetch(&counts[which], 1, __ATOMIC_RELAXED); }

// Handles are distinct small allocations nobody reads through.
static void *handle(void) { return calloc(1, 64); }

// ---- initialisation, device -------------------------------------------------

CUresult cuInit(unsigned int flags) { return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *v) { *v = CUDA_VERSION; return CUDA_SUCCESS; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return CUDA_SUCCESS; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) {
	if (ordinal != 0) {
		return CUDA_ERROR_INVALID_DEVICE;
	}
	*d = 0;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
	strncpy(name, "nullcuda (no GPU work)", (size_t)len);
	name[len - 1] = 0;
	return CUDA_SUCCESS;
}
CUresult cuDeviceTotalMem(size_t *bytes, CUdevice d) { *bytes = (size_t)80 << 30; return CUDA_SUCCESS; }
CUresult cuDeviceGetUuid(CUuuid *u, CUdevice d) { memset(u, 0, sizeof *u); return CUDA_SUCCESS; }

// Attributes of an H100-class device, so that code sizing grids gets sane
// numbers.
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) {
	switch (a) {
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; break;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *v = 1024; break;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *v = 64; break;
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *v = 2147483647; break;
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *v = 65535; break;
	case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *v = 2048; break;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *v = 49152; break;
	case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *v = 1980000; break;
	case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *v = 1; break;
	default: *v = 0;
	}
	return CUDA_SUCCESS;
}

// ---- contexts ---------------------------------------------------------------

static __thread CUcontext current;

CUresult cuCtxCreate(CUcontext *c, unsigned int flags, CUdevice d) {
	*c = handle();
	current = *c;
	return CUDA_SUCCESS;
}
CUresult cuCtxDestroy(CUcontext c) {
	if (current == c) {
		current = NULL;
	}
	free(c);
	return CUDA_SUCCESS;
}
CUresult cuCtxSetCurrent(CUcontext c) { count(nCtxCurrent); current = c; return CUDA_SUCCESS; }
CUresult cuCtxGetCurrent(CUcontext *c) { *c = current; return CUDA_SUCCESS; }
CUresult cuCtxPushCurrent(CUcontext c) { current = c; return CUDA_SUCCESS; }
CUresult cuCtxPopCurrent(CUcontext *c) {
	if (c != NULL) {
		*c = current;
	}
	current = NULL;
	return CUDA_SUCCESS;
}
CUresult cuCtxGetDevice(CUdevice *d) { *d = 0; return CUDA_SUCCESS; }
CUresult cuCtxSynchronize(void) { count(nSync); return CUDA_SUCCESS; }
CUresult cuCtxSetLimit(CUlimit l, size_t v) { return CUDA_SUCCESS; }
CUresult cuCtxSetCacheConfig(CUfunc_cache c) { return CUDA_SUCCESS; }
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { *c = handle(); return CUDA_SUCCESS; }
CUresult cuDevicePrimaryCtxRelease(CUdevice d) { return CUDA_SUCCESS; }

// ---- memory -------------------------------------------------------------------

CUresult cuMemGetInfo(size_t *free, size_t *total) {
	*total = (size_t)80 << 30;
	*free = *total - ((size_t)1 << 30);
	return CUDA_SUCCESS;
}
CUresult cuMemAlloc(CUdeviceptr *p, size_t bytes) {
	void *m = NULL;
	if (posix_memalign(&m, 256, bytes == 0 ? 1 : bytes) != 0) {
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	memset(m, 0, bytes);
	count(nAlloc);
	*p = (CUdeviceptr)(uintptr_t)m;
	return CUDA_SUCCESS;
}
CUresult cuMemAllocManaged(CUdeviceptr *p, size_t bytes, unsigned int flags) { return cuMemAlloc(p, bytes); }
CUresult cuMemFree(CUdeviceptr p) {
	count(nFree);
	free((void *)(uintptr_t)p);
	return CUDA_SUCCESS;
}

#define PTR(p) ((void *)(uintptr_t)(p))

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n) { count(nHtoD); memcpy(PTR(dst), src, n); return CUDA_SUCCESS; }
CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n) { count(nDtoH); memcpy(dst, PTR(src), n); return CUDA_SUCCESS; }
CUresult cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t n) { count(nDtoD); memmove(PTR(dst), PTR(src), n); return CUDA_SUCCESS; }
CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s) { return cuMemcpyHtoD(dst, src, n); }
CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s) { return cuMemcpyDtoH(dst, src, n); }
CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return cuMemcpyDtoD(dst, src, n); }
CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoD(dst, src, n); }
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return cuMemcpyDtoD(dst, src, n); }

CUresult cuMemsetD8(CUdeviceptr p, unsigned char v, size_t n) { count(nMemset); memset(PTR(p), v, n); return CUDA_SUCCESS; }
CUresult cuMemsetD32(CUdeviceptr p, unsigned int v, size_t n) {
	count(nMemset);
	uint32_t *w = PTR(p);
	for (size_t i = 0; i < n; i++) {
		w[i] = v;
	}
	return CUDA_SUCCESS;
}
CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream s) { return cuMemsetD8(p, v, n); }
CUresult cuMemsetD32Async(CUdeviceptr p, unsigned int v, size_t n, CUstream s) { return cuMemsetD32(p, v, n); }

// ---- modules and launches -----------------------------------------------------

CUresult cuModuleLoadData(CUmodule *m, const void *image) { *m = handle(); return CUDA_SUCCESS; }
CUresult cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned int n, CUjit_option *o, void **v) {
	*m = handle();
	return CUDA_SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) { *f = handle(); return CUDA_SUCCESS; }
CUresult cuModuleUnload(CUmodule m) { free(m); return CUDA_SUCCESS; }
CUresult cuFuncGetAttribute(int *v, CUfunction_attribute a, CUfunction f) {
	*v = a == CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK ? 1024 : 0;
	return CUDA_SUCCESS;
}
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                        unsigned int bz, unsigned int shared, CUstream s, void **params, void **extra) {
	count(nLaunch);
	return CUDA_SUCCESS;
}

// ---- streams, events, graphs ----------------------------------------------------

CUresult cuStreamCreate(CUstream *s, unsigned int flags) { *s = handle(); return CUDA_SUCCESS; }
CUresult cuStreamCreateWithPriority(CUstream *s, unsigned int flags, int prio) { *s = handle(); return CUDA_SUCCESS; }
CUresult cuStreamDestroy(CUstream s) { free(s); return CUDA_SUCCESS; }
CUresult cuStreamSynchronize(CUstream s) { count(nSync); return CUDA_SUCCESS; }
CUresult cuStreamQuery(CUstream s) { return CUDA_SUCCESS; }
CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) { return CUDA_SUCCESS; }
CUresult cuEventCreate(CUevent *e, unsigned int flags) { *e = handle(); return CUDA_SUCCESS; }
CUresult cuEventDestroy(CUevent e) { free(e); return CUDA_SUCCESS; }
CUresult cuEventRecord(CUevent e, CUstream s) { return CUDA_SUCCESS; }
CUresult cuEventQuery(CUevent e) { return CUDA_SUCCESS; }
CUresult cuEventSynchronize(CUevent e) { count(nSync); return CUDA_SUCCESS; }
CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) { *ms = 0; return CUDA_SUCCESS; }

CUresult cuStreamBeginCapture(CUstream s, CUstreamCaptureMode mode) { return CUDA_SUCCESS; }
CUresult cuStreamEndCapture(CUstream s, CUgraph *g) { *g = handle(); return CUDA_SUCCESS; }
CUresult cuGraphInstantiateWithFlags(CUgraphExec *x, CUgraph g, unsigned long long flags) { *x = handle(); return CUDA_SUCCESS; }
CUresult cuGraphLaunch(CUgraphExec x, CUstream s) { count(nGraphLaunch); return CUDA_SUCCESS; }
CUresult cuGraphExecDestroy(CUgraphExec x) { free(x); return CUDA_SUCCESS; }
CUresult cuGraphDestroy(CUgraph g) { free(g); return CUDA_SUCCESS; }

// ---- errors -----------------------------------------------------------------------

CUresult cuGetErrorName(CUresult r, const char **s) {
	*s = r == CUDA_SUCCESS ? "CUDA_SUCCESS" : "CUDA_ERROR_NULLCUDA";
	return CUDA_SUCCESS;
}
CUresult cuGetErrorString(CUresult r, const char **s) {
	*s = r == CUDA_SUCCESS ? "no error" : "an error from nullcuda";
	return CUDA_SUCCESS;
}

// ---- cuBLAS -------------------------------------------------------------------------

cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = handle(); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *w, size_t n) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                           float *c, int ldc) {
	count(nGemm);
	return CUBLAS_STATUS_SUCCESS;
}
