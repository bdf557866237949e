package gpu

// This test has no build tag: it reads the cuda-tagged generated file as
// text, so the CPU build's `go test ./...` checks it too.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// kernelsRequireCUDAEnv=1 turns "nvcc is missing" from a skip into a failure
// (CI sets it after installing the toolkit).
const kernelsRequireCUDAEnv = "MNIST_REQUIRE_CUDA"

const generatedKernels = "kernels_ptx_cuda.go"

// TestKernelsPTXUpToDate checks that gpu/kernels_ptx_cuda.go is what
// scripts/gen-kernels.sh makes of gpu/kernels/*.cu.
func TestKernelsPTXUpToDate(t *testing.T) {
	committed, err := os.ReadFile(generatedKernels)
	if err != nil {
		t.Fatal(err)
	}

	// Without nvcc: every source's recorded SHA-256 matches its contents, so
	// a .cu edited without regenerating is caught everywhere.
	t.Run("sources", func(t *testing.T) {
		sources, err := filepath.Glob(filepath.Join("kernels", "*.cu"))
		if err != nil || len(sources) == 0 {
			t.Fatalf("no kernels/*.cu (%v)", err)
		}
		recorded := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)KernelsSHA256 = "([0-9a-f]{64})"`).FindAllSubmatch(committed, -1) {
			recorded[string(m[1])] = true
		}
		for _, src := range sources {
			name := strings.TrimSuffix(filepath.Base(src), ".cu")
			text, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(text)
			want := name + `KernelsSHA256 = "` + hex.EncodeToString(sum[:]) + `"`
			if !bytes.Contains(committed, []byte(want)) {
				t.Errorf("%s changed since %s was generated: run scripts/gen-kernels.sh", src, generatedKernels)
			}
			delete(recorded, name)
		}
		for name := range recorded {
			t.Errorf("%s holds kernels of %s.cu, which no longer exists: run scripts/gen-kernels.sh", generatedKernels, name)
		}
	})

	// With nvcc: regenerating gives the same kernels, and with the recorded
	// nvcc release the very same file.
	t.Run("regenerate", func(t *testing.T) {
		nvcc, err := findNVCC()
		if err != nil {
			if os.Getenv(kernelsRequireCUDAEnv) == "1" {
				t.Fatalf("%s=1 but nvcc is not available: %v", kernelsRequireCUDAEnv, err)
			}
			t.Skipf("nvcc not available (%v): cannot regenerate the PTX; set %s=1 to make this a failure", err, kernelsRequireCUDAEnv)
		}
		out := filepath.Join(t.TempDir(), generatedKernels)
		cmd := exec.Command("bash", filepath.Join("..", "scripts", "gen-kernels.sh"), out)
		cmd.Env = append(os.Environ(), "NVCC="+nvcc)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gen-kernels.sh: %v\n%s", err, msg)
		}
		fresh, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// The kernel lists and source hashes never depend on the compiler.
		if got, want := kernelFacts(committed), kernelFacts(fresh); got != want {
			t.Errorf("%s lists\n%s\nbut gen-kernels.sh now makes\n%s\nrerun the script", generatedKernels, got, want)
		}
		recorded, current := nvccReleaseOf(committed), nvccReleaseOf(fresh)
		if recorded != current {
			// Another compiler writes other PTX; only the same release can
			// reproduce the committed bytes.
			t.Logf("%s is from nvcc %s, this machine's nvcc (%s) is %s: compared kernel lists and sources only",
				generatedKernels, recorded, nvcc, current)
			return
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s is not what scripts/gen-kernels.sh makes of kernels/*.cu with nvcc %s: rerun the script",
				generatedKernels, current)
		}
	})
}

// kernelFacts extracts the compiler-independent lines of a generated file:
// each module's kernel list and source hash.
func kernelFacts(file []byte) string {
	re := regexp.MustCompile(`(?m)^\s*(return \[\]string\{.*\}|\w+KernelsSHA256 = ".*")$`)
	var lines []string
	for _, m := range re.FindAll(file, -1) {
		lines = append(lines, strings.TrimSpace(string(m)))
	}
	return strings.Join(lines, "\n")
}

// nvccReleaseOf reads kernelsNVCCRelease from a generated file.
func nvccReleaseOf(file []byte) string {
	m := regexp.MustCompile(`(?m)^const kernelsNVCCRelease = "([0-9.]+)"`).FindSubmatch(file)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// findNVCC looks for nvcc the way scripts/gen-kernels.sh does.
func findNVCC() (string, error) {
	if p := os.Getenv("NVCC"); p != "" {
		return exec.LookPath(p)
	}
	if home := os.Getenv("CUDA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "nvcc")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("nvcc")
}
