//go:build cuda

package gpu

// Our kernels' module, loaded and launched through cgo calls of our own: a
// launch is one cgo call. gorgonia.org/cu's Function.Launch copies the
// arguments into two C.malloc'd arrays and frees them again, five cgo calls
// a launch, and a training step launches ten kernels.

/*
#cgo LDFLAGS: -lcuda
#include <stdlib.h>
#include <cuda.h>

static CUresult mnistLoadModule(CUmodule *m, const char *image, char *log, unsigned int logBytes) {
	CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
	void *vals[2] = {log, (void *)(size_t)logBytes};
	return cuModuleLoadDataEx(m, image, 2, opts, vals);
}

// mnistMaxArgs bounds a kernel's arguments (train_steps has 38).
enum { mnistMaxArgs = 40 };

// mnistLaunch launches f with n arguments, each in an 8-byte slot of args;
// the driver copies them before it returns. A cooperative launch
// (cuLaunchCooperativeKernel) starts every block at once, or fails.
static CUresult mnistLaunch(CUfunction f, unsigned int blocks, unsigned int threads, CUstream s,
		unsigned long long *args, int n, int cooperative) {
	void *params[mnistMaxArgs];
	if (n > mnistMaxArgs) {
		return CUDA_ERROR_INVALID_VALUE;
	}
	for (int i = 0; i < n; i++) {
		params[i] = &args[i];
	}
	if (cooperative) {
		return cuLaunchCooperativeKernel(f, blocks, 1, 1, threads, 1, 1, 0, s, params);
	}
	return cuLaunchKernel(f, blocks, 1, 1, threads, 1, 1, 0, s, params, NULL);
}

// mnistGridPerSM is a grid of one block of threads threads per SM of the
// current context's device, in *blocks, if the device can launch f so
// cooperatively (every block resident at once); else 0.
static CUresult mnistGridPerSM(CUfunction f, int threads, int *blocks) {
	CUdevice dev;
	int coop = 0, sms = 0, perSM = 0;
	CUresult r = cuCtxGetDevice(&dev);
	if (r == CUDA_SUCCESS) r = cuDeviceGetAttribute(&coop, CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, dev);
	if (r == CUDA_SUCCESS) r = cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
	if (r == CUDA_SUCCESS) r = cuOccupancyMaxActiveBlocksPerMultiprocessor(&perSM, f, threads, 0);
	*blocks = coop && perSM >= 1 ? sms : 0;
	return r;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"gorgonia.org/cu"
)

// jitLogBytes is the size of the buffer for the driver's PTX compiler
// errors, reported if loading the module fails.
const jitLogBytes = 16 << 10

// kernels is the loaded PTX module and its functions.
type kernels struct {
	module C.CUmodule
	fns    [numKernels]C.CUfunction
	loaded bool
}

// loadKernels JIT-compiles the embedded PTX into the current context.
func loadKernels() (*kernels, error) {
	// The generated list and ours must agree, or mlp.cu was changed without
	// updating the launch code (or the other way round).
	inPTX := map[string]bool{}
	for _, name := range mlpKernelNames() {
		inPTX[name] = true
	}
	for _, name := range kernelNames() {
		if !inPTX[name] {
			return nil, fmt.Errorf("kernel %q is not in the embedded PTX (rerun scripts/gen-kernels.sh)", name)
		}
	}
	image := C.CString(mlpKernelsPTX)
	defer C.free(unsafe.Pointer(image))
	jitLog := (*C.char)(C.calloc(jitLogBytes, 1))
	defer C.free(unsafe.Pointer(jitLog))
	k := &kernels{}
	if err := result(C.mnistLoadModule(&k.module, image, jitLog, jitLogBytes)); err != nil {
		if msg := strings.TrimSpace(C.GoString(jitLog)); msg != "" {
			return nil, fmt.Errorf("loading the kernels' PTX: %w; JIT log: %s", cudaError{err}, msg)
		}
		return nil, check("loading the kernels' PTX", err)
	}
	k.loaded = true
	for id, name := range kernelNames() {
		cname := C.CString(name)
		err := result(C.cuModuleGetFunction(&k.fns[id], k.module, cname))
		C.free(unsafe.Pointer(cname))
		if err != nil {
			return nil, errors.Join(check("finding kernel "+name, err), k.unload())
		}
	}
	return k, nil
}

// unload releases the module; calling it again does nothing.
func (k *kernels) unload() error {
	if k == nil || !k.loaded {
		return nil
	}
	k.loaded = false
	return check("unloading the kernels", result(C.cuModuleUnload(k.module)))
}

// launchShapeOn runs kernel id as blocks blocks of threads threads on
// stream s.
func (k *kernels) launchShapeOn(s cu.Stream, id kernelID, blocks, threads int, args ...kernelArg) error {
	return check("launching kernel "+kernelNames()[id], k.launchWith(s, id, blocks, threads, false, args))
}

// launchCooperative runs kernel id as blocks blocks of threads threads on
// the legacy default stream, all resident at once, as a kernel that waits
// for the whole grid (mlp.cu's grid_sync) needs; blocks must not exceed
// what the GPU keeps resident (gridPerSM).
func (k *kernels) launchCooperative(id kernelID, blocks, threads int, args ...kernelArg) error {
	return check("launching kernel "+kernelNames()[id]+" cooperatively", k.launchWith(cu.NoStream, id, blocks, threads, true, args))
}

func (k *kernels) launchWith(s cu.Stream, id kernelID, blocks, threads int, cooperative bool, args []kernelArg) error {
	var first *C.ulonglong
	if len(args) > 0 {
		first = (*C.ulonglong)(unsafe.Pointer(&args[0]))
	}
	return result(C.mnistLaunch(k.fns[id], C.uint(blocks), C.uint(threads), cStream(s), first, C.int(len(args)),
		boolInt(cooperative)))
}

// gridPerSM is a grid of one block of threads threads of kernel id per SM,
// all resident at once, or an error if the GPU cannot launch the kernel so
// (launchCooperative). One block an SM: the barrier across the grid costs
// an arrival per block. The context must be current.
func (k *kernels) gridPerSM(id kernelID, threads int) (int, error) {
	var blocks C.int
	if err := result(C.mnistGridPerSM(k.fns[id], C.int(threads), &blocks)); err != nil {
		return 0, check("sizing "+kernelNames()[id]+"'s grid", err)
	}
	if blocks <= 0 {
		return 0, fmt.Errorf("the GPU cannot launch %s cooperatively with %d-thread blocks", kernelNames()[id], threads)
	}
	return int(blocks), nil
}
