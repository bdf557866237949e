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

// mnistMaxArgs bounds a kernel's arguments (fused_update has 27).
enum { mnistMaxArgs = 32 };

// mnistLaunch launches f with n arguments, each in an 8-byte slot of args;
// the driver copies them before it returns.
static CUresult mnistLaunch(CUfunction f, unsigned int blocks, unsigned int threads, CUstream s,
		unsigned long long *args, int n) {
	void *params[mnistMaxArgs];
	if (n > mnistMaxArgs) {
		return CUDA_ERROR_INVALID_VALUE;
	}
	for (int i = 0; i < n; i++) {
		params[i] = &args[i];
	}
	return cuLaunchKernel(f, blocks, 1, 1, threads, 1, 1, 0, s, params, NULL);
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
	var first *C.ulonglong
	if len(args) > 0 {
		first = (*C.ulonglong)(unsafe.Pointer(&args[0]))
	}
	err := result(C.mnistLaunch(k.fns[id], C.uint(blocks), C.uint(threads), cStream(s), first, C.int(len(args))))
	return check("launching kernel "+kernelNames()[id], err)
}
