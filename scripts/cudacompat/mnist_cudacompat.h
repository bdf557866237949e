/*
 * mnist_cudacompat.h - CUDA driver API shims for the adapted copy of
 * gorgonia.org/cu that scripts/cuda-deps.sh generates in .cuda-deps/cu.
 *
 * gorgonia.org/cu v0.9.6 was written against the CUDA 10-12 driver API. CUDA
 * 13.0 folded several "_v2"/"_v4" entry points into the plain names, so the
 * plain names now take extra arguments and 7 call sites in cu stop compiling:
 *
 *   cuCtxCreate(pctx, flags, dev)                  -> cuCtxCreate(pctx, CUctxCreateParams *params, flags, dev)
 *   cuMemAdvise(ptr, n, advice, CUdevice)          -> cuMemAdvise(ptr, n, advice, CUmemLocation)
 *   cuMemPrefetchAsync(ptr, n, CUdevice, stream)   -> cuMemPrefetchAsync(ptr, n, CUmemLocation, flags, stream)
 *   cuGraphAddDependencies(g, from, to, n)         -> cuGraphAddDependencies(g, from, to, const CUgraphEdgeData *, n)
 *   cuGraphGetEdges(g, from, to, pn)               -> cuGraphGetEdges(g, from, to, CUgraphEdgeData *, pn)
 *
 * cuda-deps.sh rewrites those call sites to the mnist_* wrappers below, which
 * keep the old (pre-13) signatures that cu's Go code was written for and pick
 * the right driver call for the cuda.h they are compiled against. With CUDA
 * 11.x and 12.x headers the wrappers are plain pass-throughs.
 *
 * The wrappers are static inline so that every cgo preamble that includes this
 * header gets its own private copy and no symbol is exported twice.
 */
#ifndef MNIST_CUDACOMPAT_H
#define MNIST_CUDACOMPAT_H

#include <stddef.h>
#include <cuda.h>

#if CUDA_VERSION >= 13000

/* Old code named the CPU with the pseudo device CU_DEVICE_CPU (-1); the new
 * calls take an explicit location. CU_MEM_LOCATION_TYPE_HOST exists since
 * CUDA 12.2. */
static inline CUmemLocation mnist_location_of(CUdevice dev) {
	CUmemLocation loc;
	if (dev == CU_DEVICE_CPU) {
		loc.type = CU_MEM_LOCATION_TYPE_HOST;
		loc.id = 0; /* ignored for HOST */
	} else {
		loc.type = CU_MEM_LOCATION_TYPE_DEVICE;
		loc.id = (int)dev;
	}
	return loc;
}

/* A NULL CUctxCreateParams asks for an ordinary context (no execution
 * affinity, no CIG), which is what the old 3-argument call created. */
static inline CUresult mnist_cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev) {
	return cuCtxCreate(pctx, NULL, flags, dev);
}

static inline CUresult mnist_cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice dev) {
	return cuMemAdvise(devPtr, count, advice, mnist_location_of(dev));
}

/* flags must be 0 (reserved). */
static inline CUresult mnist_cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream) {
	return cuMemPrefetchAsync(devPtr, count, mnist_location_of(dstDevice), 0, hStream);
}

/* NULL edge data means default (zeroed) edges, i.e. ordinary dependencies. */
static inline CUresult mnist_cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to, size_t numDependencies) {
	return cuGraphAddDependencies(hGraph, from, to, NULL, numDependencies);
}

/* With NULL edge data the driver reports CUDA_ERROR_LOSSY_QUERY if an edge
 * carries non-default data; cu only ever creates default edges. */
static inline CUresult mnist_cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges) {
	return cuGraphGetEdges(hGraph, from, to, NULL, numEdges);
}

#else /* CUDA 11.x and 12.x: the old signatures are still the plain names. */

static inline CUresult mnist_cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev) {
	return cuCtxCreate(pctx, flags, dev);
}

static inline CUresult mnist_cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice dev) {
	return cuMemAdvise(devPtr, count, advice, dev);
}

static inline CUresult mnist_cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream) {
	return cuMemPrefetchAsync(devPtr, count, dstDevice, hStream);
}

static inline CUresult mnist_cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to, size_t numDependencies) {
	return cuGraphAddDependencies(hGraph, from, to, numDependencies);
}

static inline CUresult mnist_cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges) {
	return cuGraphGetEdges(hGraph, from, to, numEdges);
}

#endif /* CUDA_VERSION >= 13000 */

#endif /* MNIST_CUDACOMPAT_H */
