// nullcuda.cc - a CUDA driver and cuBLAS for machines without a GPU, in two
// flavours built from this file by scripts/nullcuda/build.sh. Either is put
// in front of the real libraries with LD_LIBRARY_PATH as libcuda.so.1, which
// holds the cuBLAS functions too, beside a libcublas.so.N that only
// satisfies the binary's version requirement: one library, one state, so
// cuBLAS work queues on the same streams as the driver's whatever order the
// binary names the two. Device memory is host memory; work queued on a stream
// runs as late as CUDA allows (see "streams" below), so that a missing
// wait shows up as a wrong result.
//
//   null  (scripts/host-overhead.sh): kernel launches, GEMMs and graph
//         launches do nothing. What a training step then costs is the
//         host's share alone: Go, Gorgonia's tape machine, cgo, our engines,
//         less what a real driver spends inside each call.
//   cpu   (scripts/test-cuda-cpu.sh, built with NULLCUDA_RUN_KERNELS): the
//         kernels of gpu/kernels/mlp.cu, compiled for the host from the same
//         source, and cuBLAS's SGEMM run on the CPU, and a stream being
//         captured records its work into a graph that cuGraphLaunch
//         replays. The cuda build's tests and trainer then run for real on
//         a machine without a GPU: the host code, the kernels' logic, the
//         captured step's bookkeeping, the waits between streams. Not
//         covered: the PTX itself, device math's last bits, speed, and
//         kernels whose threads race (ours do not).
//
// Every call that matters is counted. With NULLCUDA_COUNTS=FILE the counters
// live in FILE (mmap'd), so they survive the process however it ends (Go's
// os.Exit runs no atexit handlers); the tests read them
// (gpu/nullcuda_cuda_test.go).
//
// These are measuring and testing tools, never part of the product.
#include <cuda.h>
#include <cublas_v2.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#ifdef NULLCUDA_RUN_KERNELS
#include <ucontext.h>
#endif

namespace {

// The counters, in the order gpu/nullcuda_cuda_test.go reads them.
enum Counter {
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

uint64_t localCounts[nCounters];
uint64_t *counts = localCounts;

__attribute__((constructor)) void openCounts() {
	const char *path = getenv("NULLCUDA_COUNTS");
	if (path == nullptr || *path == 0) {
		return;
	}
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		return;
	}
	// ftruncate keeps what a file of the right size holds: counting goes on
	// from there (the tests read differences).
	size_t size = sizeof(uint64_t) * nCounters;
	if (ftruncate(fd, (off_t)size) == 0) {
		void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			counts = static_cast<uint64_t *>(p);
		}
	}
	close(fd);
}

void count(Counter which) { __atomic_add_fetch(&counts[which], 1, __ATOMIC_RELAXED); }

// Every call that touches memory or a stream holds this: Go may call in
// from several threads, and a GPU would run their work in some order too.
std::recursive_mutex world;
using Lock = std::lock_guard<std::recursive_mutex>;

void *ptr(CUdeviceptr p) { return reinterpret_cast<void *>(static_cast<uintptr_t>(p)); }

// ---- streams and captured graphs ----------------------------------------------

// Work waits in its stream until something forces it: a synchronisation, a
// copy to the host, a query, cuMemFree. A GPU may run queued work at any
// time after it is issued; running it as late as allowed makes a missing
// wait show up as a wrong result, not as a race that a GPU would lose only
// now and then. A non-blocking stream waits for nobody. The legacy default
// stream waits for the blocking streams and they for it; here a blocking
// stream queues its work on the legacy stream's queue, which keeps that
// order exactly and is stricter than CUDA only between two blocking
// streams (which our code does not use).
using Work = std::function<void()>;

struct Stream {
	bool nonBlocking = false;
	bool capturing = false;
	std::vector<Work> captured;
	std::vector<Work> pending;
};

// A graph's work is shared, so that a launch still queued outlives
// cuGraphExecDestroy, as CUDA allows.
struct Graph {
	std::shared_ptr<const std::vector<Work>> work;
};

Stream legacy;                // handles 0 (legacy) and 1, 2 (per-thread)
std::vector<Stream *> created; // non-blocking, by cuStreamCreate, not yet destroyed

Stream *streamOf(CUstream s) {
	uintptr_t h = reinterpret_cast<uintptr_t>(s);
	return h <= 2 ? &legacy : reinterpret_cast<Stream *>(s);
}

// queueOf is where s's work waits: its own queue, or for a blocking
// stream the legacy stream's.
Stream *queueOf(Stream *st) { return st->nonBlocking ? st : &legacy; }

Stream *capturingStream(CUstream s) {
	Stream *st = streamOf(s);
	return st->capturing ? st : nullptr;
}

void flush(Stream *st) {
	while (!st->pending.empty()) {
		std::vector<Work> work;
		work.swap(st->pending);
		for (Work &w : work) {
			w();
		}
	}
}

void flushStream(Stream *st) { flush(queueOf(st)); }

void flushAll() {
	for (Stream *st : created) {
		flush(st);
	}
	flush(&legacy);
}

// captureUnderway reports whether a stream is being captured. While one
// is, what CUDA forbids the capturing thread (synchronising, synchronous
// copies and memsets, allocating, freeing) fails here, on any thread: the
// calls our code makes during a capture must be the ones CUDA allows.
bool captureUnderway() {
	for (Stream *st : created) {
		if (st->capturing) {
			return true;
		}
	}
	return false;
}

// issue queues w on s, or records it when s is being captured.
void issue(CUstream s, Work w) {
	Lock l(world);
	Stream *st = streamOf(s);
	if (st->capturing) {
		st->captured.push_back(std::move(w));
		return;
	}
	queueOf(st)->pending.push_back(std::move(w));
}

void *handle() { return calloc(1, 64); }

} // namespace

// ---- kernels ---------------------------------------------------------------------

#ifdef NULLCUDA_RUN_KERNELS
namespace {

struct Dim {
	unsigned x = 1, y = 1, z = 1;
};
thread_local Dim threadIdx, blockIdx, blockDim, gridDim;

// A block whose kernel calls __syncthreads runs its CUDA threads as fibers
// on the launching OS thread: __syncthreads switches back to the block's
// scheduler, which resumes each fiber in turn until all have reached the
// barrier (or returned), then lets them all go on. One OS thread and no
// futexes. On x86-64 a switch is a few instructions of our own
// (nullcuda_switch: the callee-saved registers and the stack pointer);
// elsewhere it is ucontext's swapcontext, which also makes a system call
// to swap the signal mask, several times slower.
thread_local const std::function<void()> *fiberCall;
constexpr size_t fiberStack = 64 << 10;

#if defined(__x86_64__)
// nullcuda_switch(from, to) saves the callee-saved registers on the current
// stack, stores the stack pointer in *from, and resumes the stack to, as
// left by an earlier nullcuda_switch or by Fiber::start.
extern "C" void nullcuda_switch(void **from, void *to);
asm(R"(
	.text
	.p2align 4
	.type nullcuda_switch, @function
nullcuda_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size nullcuda_switch, .-nullcuda_switch
)");

struct Fiber {
	std::unique_ptr<char[]> stack{new char[fiberStack]};
	void *sp = nullptr;
	bool done = false;
	bool atGrid = false; // waiting in grid_sync
	int barrier = 0;     // the line of the __syncthreads it waits at
};
thread_local void *schedulerSP;
thread_local Fiber *runningFiber;

[[noreturn]] void fiberMain() {
	(*fiberCall)();
	runningFiber->done = true;
	void *unused;
	nullcuda_switch(&unused, schedulerSP);
	abort(); // a finished fiber is never resumed
}

// start lays out the fiber's stack as nullcuda_switch leaves one: six
// registers, then fiberMain as the return address, with the stack aligned
// as at a function's entry.
void startFiber(Fiber &f) {
	auto top = reinterpret_cast<uintptr_t>(f.stack.get() + fiberStack) & ~uintptr_t(15);
	auto *slot = reinterpret_cast<void **>(top);
	*--slot = nullptr; // fiberMain's return address: none
	*--slot = reinterpret_cast<void *>(&fiberMain); // where the first switch returns to
	for (int i = 0; i < 6; i++) {
		*--slot = nullptr; // rbp, rbx, r12-r15
	}
	f.sp = slot;
	f.done = false;
	f.atGrid = false;
	f.barrier = 0;
}
void resumeFiber(Fiber &f) { nullcuda_switch(&schedulerSP, f.sp); }
void yieldFiber() { nullcuda_switch(&runningFiber->sp, schedulerSP); }
#else
struct Fiber {
	std::unique_ptr<char[]> stack{new char[fiberStack]};
	ucontext_t ctx;
	bool done = false;
	bool atGrid = false; // waiting in grid_sync
	int barrier = 0;     // the line of the __syncthreads it waits at
};
thread_local ucontext_t blockScheduler;
thread_local Fiber *runningFiber;

void fiberMain() {
	(*fiberCall)();
	runningFiber->done = true; // uc_link returns to the scheduler
}
void startFiber(Fiber &f) {
	getcontext(&f.ctx);
	f.ctx.uc_stack.ss_sp = f.stack.get();
	f.ctx.uc_stack.ss_size = fiberStack;
	f.ctx.uc_link = &blockScheduler;
	f.done = false;
	f.atGrid = false;
	f.barrier = 0;
	makecontext(&f.ctx, fiberMain, 0);
}
void resumeFiber(Fiber &f) { swapcontext(&blockScheduler, &f.ctx); }
void yieldFiber() { swapcontext(&runningFiber->ctx, &blockScheduler); }
#endif

// syncthreads is __syncthreads, called at line of the kernel file (the
// kernels' __syncthreads() is a macro for it), so that runBlock can check
// that a block's threads all wait at the same one.
void syncthreads(int line) {
	if (runningFiber == nullptr) {
		fprintf(stderr, "nullcuda: a kernel not marked as synchronising called __syncthreads (scripts/nullcuda/build.sh)\n");
		abort();
	}
	runningFiber->barrier = line;
	yieldFiber();
	runningFiber->barrier = 0;
}

// A cooperative launch (cuLaunchCooperativeKernel) runs every block's
// threads as fibers at once, and grid_sync, mlp.cu's barrier for the whole
// grid, is this one: the fiber waits until every thread of the grid has
// reached it (runCooperative). Between two grid barriers the blocks still
// run one at a time, which a GPU may do too; so __shared__ arrays, statics
// here, serve each block in turn, and a kernel must not expect what its
// block left in shared memory to survive a grid barrier (mlp.cu's do not,
// but for a table that every block fills with the same values).
thread_local bool cooperative;

void grid_sync(unsigned int *) {
	if (runningFiber == nullptr || !cooperative) {
		fprintf(stderr, "nullcuda: grid_sync outside a cooperative launch (cuLaunchCooperativeKernel)\n");
		abort();
	}
	runningFiber->atGrid = true;
	yieldFiber();
}

// Memory is the host's: a load from L2 is a load.
template <typename T> T __ldcg(const T *p) { return *p; }
// A kernel's trap ends the process, as it ends the context on a GPU.
[[noreturn]] void __trap() {
	fprintf(stderr, "nullcuda: a kernel trapped\n");
	abort();
}
// A fused multiply-add rounds once, on the host as on the GPU.
float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }

// Blocks run one at a time, and a block's threads take turns: memory is
// always coherent, and an atomic is a plain read-modify-write.
void __threadfence() {}
int atomicAdd(int *p, int v) {
	int old = *p;
	*p = old + v;
	return old;
}

} // namespace

// The kernels, from the same source nvcc compiles; __global__ functions
// become ordinary extern "C" functions, __device__ helpers static ones, and
// __shared__ arrays statics: a block's threads share them, and blocks run
// one at a time.
#undef __global__
#undef __device__
#undef __shared__
#define __global__
#define __device__ static
#define __shared__ static
#define __syncthreads() syncthreads(__LINE__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare" // threadIdx.x is unsigned, as in CUDA
#include NULLCUDA_KERNELS_CU
#pragma GCC diagnostic pop
#undef __syncthreads
#undef __global__
#undef __device__
#undef __shared__

namespace {

// A kernel: bind turns the driver's argument array into a call with the
// arguments copied (the array and the values it points at may be gone by
// the time a captured launch is replayed).
struct Kernel {
	const char *name;
	bool syncs; // calls __syncthreads: its threads run concurrently
	std::function<std::function<void()>(void **)> bind;
};

template <typename... A, size_t... I>
std::function<void()> bindArgs(void (*f)(A...), void **params, std::index_sequence<I...>) {
	std::tuple<std::remove_cv_t<A>...> args(*static_cast<std::remove_cv_t<A> *>(params[I])...);
	return [f, args]() { std::apply(f, args); };
}

template <typename... A>
Kernel kernel(const char *name, bool syncs, void (*f)(A...)) {
	return Kernel{name, syncs,
		      [f](void **params) { return bindArgs(f, params, std::index_sequence_for<A...>{}); }};
}

// NULLCUDA_KERNEL_TABLE is generated by build.sh from the kernel file's
// extern "C" __global__ functions: one kernel(name, syncs, name) each.
const std::vector<Kernel> &kernels() {
	static const std::vector<Kernel> table = {
#include NULLCUDA_KERNEL_TABLE
	};
	return table;
}

// The fibers are kept from one launch to the next: a cooperative grid of
// an H100's 132 blocks of 256 threads is 33,792 stacks, too many to
// allocate and fault in again at every launch.
thread_local std::vector<Fiber> pool;

// fibers returns n fibers of the pool, to be started.
Fiber *fibers(size_t n) {
	if (pool.size() < n) {
		pool.resize(n);
	}
	return pool.data();
}

Dim indexIn(unsigned i, Dim d) { return Dim{i % d.x, (i / d.x) % d.y, i / (d.x * d.y)}; }

// NULLCUDA_ORDER=reverse, read at each launch, runs a grid's blocks, and a
// block's threads between two barriers, last first. A kernel whose
// results depend on that order has a race: a barrier missing between a
// write and a read (or a read and the next write) by different threads
// shows in one of the two orders even where the other, like a GPU that
// happens to run them so, hides it.
thread_local bool reversed;

void readOrder() {
	const char *env = getenv("NULLCUDA_ORDER");
	reversed = env != nullptr && strcmp(env, "reverse") == 0;
}

// nth is the i-th of n things to run, in the launch's order.
unsigned nth(unsigned i, unsigned n) { return reversed ? n - 1 - i : i; }

// checkBarrier aborts unless the block's threads that wait at a
// __syncthreads are all its threads, at the same one: CUDA allows a
// barrier only where the whole block reaches it, so a barrier in a branch
// some threads skip, or some threads at a barrier while others returned or
// wait at the grid's, hangs or misbehaves on a GPU, where here it would
// only let the waiting threads go on.
void checkBarrier(const Fiber *block, unsigned threads) {
	unsigned waiting = 0;
	int line = 0;
	for (unsigned t = 0; t < threads; t++) {
		const Fiber &f = block[t];
		if (f.done || f.atGrid) {
			continue;
		}
		if (waiting++ == 0) {
			line = f.barrier;
		} else if (f.barrier != line) {
			fprintf(stderr, "nullcuda: a block's threads wait at different __syncthreads, lines %d and %d of the kernel file\n",
				line, f.barrier);
			abort();
		}
	}
	if (waiting != 0 && waiting != threads) {
		fprintf(stderr, "nullcuda: %u of a block's %u threads wait at __syncthreads (line %d of the kernel file), the others returned or wait in grid_sync\n",
			waiting, threads, line);
		abort();
	}
}

// runBlock runs a block's started fibers in rounds, each up to its next
// __syncthreads, until every one has returned or waits in grid_sync.
void runBlock(Fiber *block, Dim dim) {
	unsigned threads = dim.x * dim.y * dim.z;
	for (bool live = true; live;) {
		live = false;
		for (unsigned i = 0; i < threads; i++) {
			unsigned t = nth(i, threads);
			Fiber &f = block[t];
			if (f.done || f.atGrid) {
				continue;
			}
			threadIdx = indexIn(t, dim);
			runningFiber = &f;
			resumeFiber(f);
			live = live || (!f.done && !f.atGrid);
		}
		checkBarrier(block, threads);
	}
	runningFiber = nullptr;
}

// runGrid runs a bound kernel over the grid, one block at a time: thread
// by thread, or, for a kernel that synchronises its block, with a fiber per
// CUDA thread.
void runGrid(const Kernel *k, const std::function<void()> &call, Dim grid, Dim block) {
	unsigned threads = block.x * block.y * block.z;
	unsigned blocks = grid.x * grid.y * grid.z;
	readOrder();
	gridDim = grid;
	blockDim = block;
	for (unsigned i = 0; i < blocks; i++) {
		blockIdx = indexIn(nth(i, blocks), grid);
		if (!k->syncs) {
			for (unsigned t = 0; t < threads; t++) {
				threadIdx = indexIn(nth(t, threads), block);
				call();
			}
			continue;
		}
		fiberCall = &call;
		Fiber *fs = fibers(threads);
		for (unsigned t = 0; t < threads; t++) {
			startFiber(fs[t]);
		}
		runBlock(fs, block);
	}
}

// runCooperative runs a bound kernel with every CUDA thread of the grid a
// fiber, all started at once. Each round takes the blocks in turn, and runs
// a block's fibers until each has reached grid_sync or returned; then
// every fiber at the barrier goes on. A grid where some threads returned
// while others wait at the barrier would hang on a GPU: it aborts here.
void runCooperative(const std::function<void()> &call, Dim grid, Dim block) {
	unsigned threads = block.x * block.y * block.z;
	unsigned blocks = grid.x * grid.y * grid.z;
	size_t n = size_t(blocks) * threads;
	Fiber *fs = fibers(n);
	readOrder();
	gridDim = grid;
	blockDim = block;
	fiberCall = &call;
	for (size_t i = 0; i < n; i++) {
		startFiber(fs[i]);
	}
	cooperative = true;
	for (;;) {
		for (unsigned i = 0; i < blocks; i++) {
			unsigned b = nth(i, blocks);
			blockIdx = indexIn(b, grid);
			runBlock(fs + size_t(b) * threads, block);
		}
		size_t waiting = 0;
		for (size_t i = 0; i < n; i++) {
			waiting += fs[i].atGrid;
			fs[i].atGrid = false;
		}
		if (waiting == 0) {
			break;
		}
		if (waiting != n) {
			fprintf(stderr, "nullcuda: %zu of %zu threads wait in grid_sync, the others returned: a GPU would hang\n",
				waiting, n);
			abort();
		}
	}
	cooperative = false;
}

} // namespace
#endif

// ---- the driver API ------------------------------------------------------------------

namespace {
// A function handle: the kernel it names, if this flavour runs kernels and
// the name is one of ours (Gorgonia's own modules load too, unused).
struct Function {
	std::string name;
	const void *kernel = nullptr;
};
} // namespace

extern "C" {

CUresult cuInit(unsigned int) { return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *v) {
	*v = CUDA_VERSION;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGetCount(int *n) {
	*n = 1;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice *d, int ordinal) {
	if (ordinal != 0) {
		return CUDA_ERROR_INVALID_DEVICE;
	}
	*d = 0;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char *name, int len, CUdevice) {
#ifdef NULLCUDA_RUN_KERNELS
	snprintf(name, (size_t)len, "nullcuda cpu (kernels on the CPU)");
#else
	snprintf(name, (size_t)len, "nullcuda null (no GPU work)");
#endif
	return CUDA_SUCCESS;
}
CUresult cuDeviceTotalMem(size_t *bytes, CUdevice) {
	*bytes = (size_t)80 << 30;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGetUuid(CUuuid *u, CUdevice) {
	memset(u, 0, sizeof *u);
	return CUDA_SUCCESS;
}

// Attributes of an H100-class device, so that code sizing grids gets sane
// numbers.
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice) {
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
	case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *v = 1; break;
	case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH: *v = 1; break;
	default: *v = 0;
	}
	return CUDA_SUCCESS;
}

// ---- contexts -------------------------------------------------------------------------

static thread_local CUcontext current;

// CUDA 13 added a parameter block (cuCtxCreate_v4; scripts/cudacompat).
#if CUDA_VERSION >= 13000
CUresult cuCtxCreate(CUcontext *c, CUctxCreateParams *, unsigned int, CUdevice) {
#else
CUresult cuCtxCreate(CUcontext *c, unsigned int, CUdevice) {
#endif
	*c = static_cast<CUcontext>(handle());
	current = *c;
	return CUDA_SUCCESS;
}
CUresult cuCtxDestroy(CUcontext c) {
	{
		Lock l(world);
		flushAll();
	}
	if (current == c) {
		current = nullptr;
	}
	free(c);
	return CUDA_SUCCESS;
}
CUresult cuCtxSetCurrent(CUcontext c) {
	count(nCtxCurrent);
	current = c;
	return CUDA_SUCCESS;
}
CUresult cuCtxGetCurrent(CUcontext *c) {
	*c = current;
	return CUDA_SUCCESS;
}
CUresult cuCtxPushCurrent(CUcontext c) {
	current = c;
	return CUDA_SUCCESS;
}
CUresult cuCtxPopCurrent(CUcontext *c) {
	if (c != nullptr) {
		*c = current;
	}
	current = nullptr;
	return CUDA_SUCCESS;
}
CUresult cuCtxGetDevice(CUdevice *d) {
	*d = 0;
	return CUDA_SUCCESS;
}
CUresult cuCtxSynchronize(void) {
	count(nSync);
	Lock l(world);
	if (captureUnderway()) {
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	flushAll();
	return CUDA_SUCCESS;
}
CUresult cuCtxSetLimit(CUlimit, size_t) { return CUDA_SUCCESS; }
CUresult cuCtxSetCacheConfig(CUfunc_cache) { return CUDA_SUCCESS; }
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice) {
	*c = static_cast<CUcontext>(handle());
	return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease(CUdevice) { return CUDA_SUCCESS; }

// ---- memory -----------------------------------------------------------------------------

CUresult cuMemGetInfo(size_t *freeBytes, size_t *total) {
	*total = (size_t)80 << 30;
	*freeBytes = *total - ((size_t)1 << 30);
	return CUDA_SUCCESS;
}
CUresult cuMemAlloc(CUdeviceptr *p, size_t bytes) {
	{
		Lock l(world);
		if (captureUnderway()) {
			return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
		}
	}
	void *m = nullptr;
	if (posix_memalign(&m, 256, bytes == 0 ? 1 : bytes) != 0) {
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
#ifdef NULLCUDA_RUN_KERNELS
	memset(m, 0xff, bytes); // CUDA clears nothing: a read before a write gives NaN
#else
	memset(m, 0, bytes);
#endif
	count(nAlloc);
	*p = static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(m));
	return CUDA_SUCCESS;
}
CUresult cuMemAllocManaged(CUdeviceptr *p, size_t bytes, unsigned int) { return cuMemAlloc(p, bytes); }
// cuMemFree waits for the whole device, as CUDA's does.
CUresult cuMemFree(CUdeviceptr p) {
	count(nFree);
	Lock l(world);
	if (captureUnderway()) {
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	flushAll();
	free(ptr(p));
	return CUDA_SUCCESS;
}

// A copy from pageable host memory (all Go memory is) is staged at once, so
// the caller may reuse its buffer when the call returns; the copy to the
// device waits in the stream.
CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s) {
	count(nHtoD);
	{
		Lock l(world);
		if (capturingStream(s)) {
			return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // from pageable memory
		}
	}
	auto staged = std::make_shared<std::vector<char>>(static_cast<const char *>(src), static_cast<const char *>(src) + n);
	issue(s, [=] { memcpy(ptr(dst), staged->data(), n); });
	return CUDA_SUCCESS;
}
// A copy to pageable host memory returns when it is done: after the work
// queued before it in its stream.
CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s) {
	count(nDtoH);
	Lock l(world);
	if (capturingStream(s)) {
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	flushStream(streamOf(s));
	memcpy(dst, ptr(src), n);
	return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
	count(nDtoD);
	issue(s, [=] { memmove(ptr(dst), ptr(src), n); });
	return CUDA_SUCCESS;
}
// The "synchronous" copy from pageable memory returns once the data is
// staged; it reaches the device in the legacy stream's order, which a
// non-blocking stream does not wait for.
// The synchronous forms fail while a capture is underway.
static bool syncForbidden() {
	Lock l(world);
	return captureUnderway();
}
CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n) {
	return syncForbidden() ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : cuMemcpyHtoDAsync(dst, src, n, nullptr);
}
CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n) {
	return syncForbidden() ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : cuMemcpyDtoHAsync(dst, src, n, nullptr);
}
CUresult cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t n) {
	return syncForbidden() ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : cuMemcpyDtoDAsync(dst, src, n, nullptr);
}
CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoD(dst, src, n); }
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return cuMemcpyDtoDAsync(dst, src, n, s); }

CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream s) {
	count(nMemset);
	issue(s, [=] { memset(ptr(p), v, n); });
	return CUDA_SUCCESS;
}
CUresult cuMemsetD32Async(CUdeviceptr p, unsigned int v, size_t n, CUstream s) {
	count(nMemset);
	issue(s, [=] {
		uint32_t *w = static_cast<uint32_t *>(ptr(p));
		for (size_t i = 0; i < n; i++) {
			w[i] = v;
		}
	});
	return CUDA_SUCCESS;
}
CUresult cuMemsetD8(CUdeviceptr p, unsigned char v, size_t n) {
	return syncForbidden() ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : cuMemsetD8Async(p, v, n, nullptr);
}
CUresult cuMemsetD32(CUdeviceptr p, unsigned int v, size_t n) {
	return syncForbidden() ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : cuMemsetD32Async(p, v, n, nullptr);
}

// ---- modules and launches ------------------------------------------------------------------

CUresult cuModuleLoadData(CUmodule *m, const void *) {
	*m = static_cast<CUmodule>(handle());
	return CUDA_SUCCESS;
}
CUresult cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned int, CUjit_option *, void **) {
	return cuModuleLoadData(m, image);
}
CUresult cuModuleGetFunction(CUfunction *f, CUmodule, const char *name) {
	auto *fn = new Function{name};
#ifdef NULLCUDA_RUN_KERNELS
	for (const Kernel &k : kernels()) {
		if (fn->name == k.name) {
			fn->kernel = &k;
		}
	}
#endif
	*f = reinterpret_cast<CUfunction>(fn);
	return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule m) {
	free(m);
	return CUDA_SUCCESS;
}
CUresult cuFuncGetAttribute(int *v, CUfunction_attribute a, CUfunction) {
	*v = a == CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK ? 1024 : 0;
	return CUDA_SUCCESS;
}
// launchOn queues f's grid on s; cooperative launches run their blocks
// together (runCooperative), and at most as many as could be resident:
// the SMs times cuOccupancyMaxActiveBlocksPerMultiprocessor's answer.
static CUresult launchOn(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
			 unsigned int by, unsigned int bz, CUstream s, void **params, bool cooperative) {
	count(nLaunch);
#ifdef NULLCUDA_RUN_KERNELS
	const Function *fn = reinterpret_cast<const Function *>(f);
	const Kernel *k = static_cast<const Kernel *>(fn->kernel);
	if (k == nullptr) {
		fprintf(stderr, "nullcuda: kernel %s is not one that nullcuda runs\n", fn->name.c_str());
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	std::function<void()> call = k->bind(params);
	Dim grid{gx, gy, gz}, block{bx, by, bz};
	if (cooperative) {
		int perSM = 0, sms = 0;
		cuOccupancyMaxActiveBlocksPerMultiprocessor(&perSM, f, (int)(bx * by * bz), 0);
		cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0);
		if ((uint64_t)gx * gy * gz > (uint64_t)perSM * (uint64_t)sms) {
			return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
		}
		issue(s, [=] { runCooperative(call, grid, block); });
	} else {
		issue(s, [=] { runGrid(k, call, grid, block); });
	}
#else
	(void)f, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)s, (void)params, (void)cooperative;
#endif
	return CUDA_SUCCESS;
}
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                        unsigned int bz, unsigned int, CUstream s, void **params, void **) {
	return launchOn(f, gx, gy, gz, bx, by, bz, s, params, false);
}
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
				   unsigned int by, unsigned int bz, unsigned int, CUstream s, void **params) {
	return launchOn(f, gx, gy, gz, bx, by, bz, s, params, true);
}
// As many blocks as the SM's threads allow (registers and shared memory
// are not modelled).
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *n, CUfunction, int blockSize, size_t) {
	if (blockSize <= 0 || blockSize > 1024) {
		return CUDA_ERROR_INVALID_VALUE;
	}
	*n = 2048 / blockSize;
	return CUDA_SUCCESS;
}

// ---- streams, events, graphs ------------------------------------------------------------------

CUresult cuStreamCreate(CUstream *s, unsigned int flags) {
	Lock l(world);
	auto *st = new Stream;
	st->nonBlocking = (flags & CU_STREAM_NON_BLOCKING) != 0;
	if (st->nonBlocking) {
		created.push_back(st);
	}
	*s = reinterpret_cast<CUstream>(st);
	return CUDA_SUCCESS;
}
CUresult cuStreamCreateWithPriority(CUstream *s, unsigned int flags, int) { return cuStreamCreate(s, flags); }
// A destroyed stream's queued work still runs.
CUresult cuStreamDestroy(CUstream s) {
	Lock l(world);
	Stream *st = streamOf(s);
	if (st == &legacy) {
		return CUDA_ERROR_INVALID_HANDLE;
	}
	flushStream(st);
	created.erase(std::remove(created.begin(), created.end(), st), created.end());
	// Not freed: an event recorded on it may still name it.
	return CUDA_SUCCESS;
}
// Synchronising a stream that is being captured is an error on a GPU.
CUresult cuStreamSynchronize(CUstream s) {
	count(nSync);
	Lock l(world);
	if (capturingStream(s)) {
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	flushStream(streamOf(s));
	return CUDA_SUCCESS;
}
// A query finds the stream's work done, having run it.
CUresult cuStreamQuery(CUstream s) {
	Lock l(world);
	flushStream(streamOf(s));
	return CUDA_SUCCESS;
}

// An event is the stream it was last recorded on: waiting for it runs all
// of that stream's queued work, no less than a GPU would have done.
namespace {
struct Event {
	Stream *stream = nullptr;
};
} // namespace

CUresult cuEventCreate(CUevent *e, unsigned int) {
	*e = reinterpret_cast<CUevent>(new Event);
	return CUDA_SUCCESS;
}
CUresult cuEventDestroy(CUevent e) {
	delete reinterpret_cast<Event *>(e);
	return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent e, CUstream s) {
	Lock l(world);
	reinterpret_cast<Event *>(e)->stream = streamOf(s);
	return CUDA_SUCCESS;
}
CUresult cuEventSynchronize(CUevent e) {
	count(nSync);
	Lock l(world);
	if (Stream *st = reinterpret_cast<Event *>(e)->stream) {
		flushStream(st);
	}
	return CUDA_SUCCESS;
}
CUresult cuEventQuery(CUevent e) {
	Lock l(world);
	if (Stream *st = reinterpret_cast<Event *>(e)->stream) {
		flushStream(st);
	}
	return CUDA_SUCCESS;
}
CUresult cuStreamWaitEvent(CUstream, CUevent e, unsigned int) { return cuEventQuery(e); }
CUresult cuEventElapsedTime(float *ms, CUevent, CUevent) {
	*ms = 0;
	return CUDA_SUCCESS;
}

CUresult cuStreamBeginCapture(CUstream s, CUstreamCaptureMode) {
	Lock l(world);
	Stream *st = streamOf(s);
	if (st == &legacy) {
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // the default streams cannot be captured
	}
	if (st->capturing) {
		return CUDA_ERROR_ILLEGAL_STATE;
	}
	st->capturing = true;
	st->captured.clear();
	return CUDA_SUCCESS;
}
// NULLCUDA_FAIL_CAPTURE makes captures fail as an invalidated one does,
// for the tests of what our code does then: "all" every capture, "once"
// every other one, the first of each pair (a capture that succeeds when
// tried again).
CUresult cuStreamEndCapture(CUstream s, CUgraph *g) {
	static bool failedLast = false;
	Lock l(world);
	Stream *st = capturingStream(s);
	if (st == nullptr) {
		return CUDA_ERROR_ILLEGAL_STATE;
	}
	st->capturing = false;
	const char *env = getenv("NULLCUDA_FAIL_CAPTURE");
	std::string fail = env == nullptr ? "" : env;
	if (fail == "once") {
		failedLast = !failedLast;
	}
	if (fail == "all" || (fail == "once" && failedLast)) {
		st->captured.clear();
		return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
	}
	*g = reinterpret_cast<CUgraph>(new Graph{std::make_shared<const std::vector<Work>>(std::move(st->captured))});
	st->captured.clear();
	return CUDA_SUCCESS;
}
CUresult cuGraphInstantiateWithFlags(CUgraphExec *x, CUgraph g, unsigned long long) {
	*x = reinterpret_cast<CUgraphExec>(new Graph(*reinterpret_cast<Graph *>(g)));
	return CUDA_SUCCESS;
}
CUresult cuGraphLaunch(CUgraphExec x, CUstream s) {
	count(nGraphLaunch);
	std::shared_ptr<const std::vector<Work>> work = reinterpret_cast<const Graph *>(x)->work;
	issue(s, [work] {
		for (const Work &w : *work) {
			w();
		}
	});
	return CUDA_SUCCESS;
}
CUresult cuGraphExecDestroy(CUgraphExec x) {
	delete reinterpret_cast<Graph *>(x);
	return CUDA_SUCCESS;
}
CUresult cuGraphDestroy(CUgraph g) {
	delete reinterpret_cast<Graph *>(g);
	return CUDA_SUCCESS;
}

// ---- errors ---------------------------------------------------------------------------------------

CUresult cuGetErrorName(CUresult r, const char **s) {
	*s = r == CUDA_SUCCESS ? "CUDA_SUCCESS" : "CUDA_ERROR_NULLCUDA";
	return CUDA_SUCCESS;
}
CUresult cuGetErrorString(CUresult r, const char **s) {
	*s = r == CUDA_SUCCESS ? "no error" : "an error from nullcuda";
	return CUDA_SUCCESS;
}

// ---- cuBLAS ------------------------------------------------------------------------------------------

namespace {
struct Blas {
	CUstream stream = nullptr;
};
} // namespace

cublasStatus_t cublasCreate(cublasHandle_t *h) {
	*h = reinterpret_cast<cublasHandle_t>(new Blas);
	return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
	delete reinterpret_cast<Blas *>(h);
	return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
	reinterpret_cast<Blas *>(h)->stream = reinterpret_cast<CUstream>(s);
	return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

// cublasSgemm: column-major C (m x n) = alpha op(A) (m x k) op(B) (k x n) +
// beta C, alpha and beta read from host memory now (cuBLAS's default
// pointer mode). As in cuBLAS, beta 0 ignores C's old contents.
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                           float *c, int ldc) {
	count(nGemm);
#ifdef NULLCUDA_RUN_KERNELS
	float al = *alpha, be = *beta;
	bool transA = ta != CUBLAS_OP_N, transB = tb != CUBLAS_OP_N;
	issue(reinterpret_cast<Blas *>(h)->stream, [=] {
		// op(A) and op(B) copied to plain column-major m x k and k x n, so
		// that the inner loop runs down contiguous columns whatever the
		// transposes; each C(i, j) adds its k products in order.
		std::vector<float> opA((size_t)m * k), opB((size_t)k * n), col(m);
		for (int l = 0; l < k; l++) {
			for (int i = 0; i < m; i++) {
				opA[i + (size_t)l * m] = transA ? a[l + (size_t)i * lda] : a[i + (size_t)l * lda];
			}
		}
		for (int j = 0; j < n; j++) {
			for (int l = 0; l < k; l++) {
				opB[l + (size_t)j * k] = transB ? b[j + (size_t)l * ldb] : b[l + (size_t)j * ldb];
			}
		}
		for (int j = 0; j < n; j++) {
			std::fill(col.begin(), col.end(), 0.0f);
			for (int l = 0; l < k; l++) {
				const float blj = opB[l + (size_t)j * k];
				const float *aCol = &opA[(size_t)l * m];
				for (int i = 0; i < m; i++) {
					col[i] += aCol[i] * blj;
				}
			}
			for (int i = 0; i < m; i++) {
				float *cij = &c[i + (size_t)j * ldc];
				*cij = be == 0.0f ? al * col[i] : al * col[i] + be * *cij;
			}
		}
	});
#else
	(void)h, (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb,
	    (void)beta, (void)c, (void)ldc;
#endif
	return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
