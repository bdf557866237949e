package gpu

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// compatUse calls every wrapper of mnist_cudacompat.h, so the compiler checks
// each one against the cuda.h in use.
const compatUse = `#include "mnist_cudacompat.h"

int mnist_compat_use(void) {
	CUcontext ctx;
	CUgraphNode from = 0, to = 0;
	size_t n = 1;
	int bad = 0;
	bad += mnist_cuCtxCreate(&ctx, 0, 0) != CUDA_SUCCESS;
	bad += mnist_cuMemAdvise(0, 4096, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, CU_DEVICE_CPU) != CUDA_SUCCESS;
	bad += mnist_cuMemAdvise(0, 4096, CU_MEM_ADVISE_SET_ACCESSED_BY, 0) != CUDA_SUCCESS;
	bad += mnist_cuMemPrefetchAsync(0, 4096, 0, 0) != CUDA_SUCCESS;
	bad += mnist_cuGraphAddDependencies(0, &from, &to, 1) != CUDA_SUCCESS;
	bad += mnist_cuGraphGetEdges(0, &from, &to, &n) != CUDA_SUCCESS;
	return bad;
}
`

// compileCompat compiles compatUse with gcc, cuda.h taken from includeDir.
func compileCompat(t *testing.T, gcc, includeDir string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "use.c")
	if err := os.WriteFile(src, []byte(compatUse), 0o644); err != nil {
		t.Fatal(err)
	}
	// -isystem: warnings inside cuda.h itself are NVIDIA's business; the
	// wrappers' own code is checked with every warning an error.
	cmd := exec.Command(gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
		"-I", filepath.Join(repoRoot(t), "scripts", "cudacompat"), "-isystem", includeDir, src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("mnist_cudacompat.h does not compile against %s/cuda.h: %v\n%s", includeDir, err, out.String())
	}
}

// TestCompatHeaderInstalledCUDA compiles the compat header against the
// installed toolkit (CUDA_HOME, /usr/local/cuda or /usr), which exercises
// the branch for that CUDA version.
func TestCompatHeaderInstalledCUDA(t *testing.T) {
	gcc := needTool(t, "gcc")
	compileCompat(t, gcc, filepath.Join(needCUDAHome(t), "include"))
}

// TestCompatHeaderCUDA13 compiles the compat header's CUDA 13 branch against
// gpu/testdata/cuda13/cuda.h, a stand-in that declares the CUDA 13.0
// signatures, so that branch is checked even where only CUDA 11 or 12 is
// installed.
func TestCompatHeaderCUDA13(t *testing.T) {
	gcc := needTool(t, "gcc")
	compileCompat(t, gcc, filepath.Join(repoRoot(t), "gpu", "testdata", "cuda13"))
}
