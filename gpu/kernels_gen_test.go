package gpu

// This test has no build tag: it reads the cuda-tagged generated file and the
// PTX it embeds as data, so the CPU build's `go test ./...` checks them too.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"mnist/model"
)

const generatedKernels = "kernels_ptx_cuda.go"

// TestKernelsPTXUpToDate checks that gpu/kernels_ptx_cuda.go and
// gpu/kernels/*.ptx are what scripts/gen-kernels.sh makes of gpu/kernels/*.cu.
func TestKernelsPTXUpToDate(t *testing.T) {
	gpuDir := filepath.Join(repoRoot(t), "gpu")
	committed := parseGenerated(t, filepath.Join(gpuDir, generatedKernels))

	// Without nvcc: every source's recorded SHA-256 matches its contents, so
	// a .cu edited without regenerating is caught everywhere; every PTX file
	// is the one the Go file was generated with, defines the kernels it
	// lists, and targets the architecture Open demands.
	t.Run("sources", func(t *testing.T) {
		if !committed.generatedTag {
			t.Errorf(`%s lacks the "Code generated ... DO NOT EDIT." line`, generatedKernels)
		}
		if committed.consts["kernelsNVCCRelease"] == "" {
			t.Errorf("%s lacks kernelsNVCCRelease", generatedKernels)
		}
		sources, err := filepath.Glob(filepath.Join(gpuDir, "kernels", "*.cu"))
		if err != nil || len(sources) == 0 {
			t.Fatalf("no gpu/kernels/*.cu (%v)", err)
		}
		names := kernelModules(committed)
		// Open admits GPUs from ptxComputeCapability on; the native engine's
		// PTX must not need a newer one.
		ptxCC := parseGenerated(t, filepath.Join(gpuDir, "ptx_cuda.go")).consts["ptxComputeCapability"]
		var wantPTX []string
		for _, src := range sources {
			name := strings.TrimSuffix(filepath.Base(src), ".cu")
			wantPTX = append(wantPTX, "kernels/"+name+".ptx")
			if !names[name] {
				t.Errorf("gpu/kernels/%s.cu is not in %s: run go generate ./gpu/", name, generatedKernels)
				continue
			}
			delete(names, name)
			if got := committed.consts[name+"KernelsSHA256"]; got != sha256Hex(string(mustReadFile(t, src))) {
				t.Errorf("gpu/kernels/%s.cu changed since %s was generated: run go generate ./gpu/", name, generatedKernels)
			}
			if got, want := committed.consts[name+"KernelsSource"], "gpu/kernels/"+name+".cu"; got != want {
				t.Errorf("%sKernelsSource is %q, want %q", name, got, want)
			}
			ptx := committed.embedded(t, name+"KernelsPTX")
			if recorded, actual := committed.consts[name+"KernelsPTXSHA256"], sha256Hex(ptx); recorded != actual {
				t.Errorf("gpu/kernels/%s.ptx has SHA-256 %s but %s was generated with %q: edited by hand? run go generate ./gpu/",
					name, actual, generatedKernels, recorded)
			}
			if got, want := committed.nameLists[name+"KernelNames"], ptxEntries(ptx); len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Errorf("%sKernelNames lists %v but gpu/kernels/%s.ptx defines %v", name, got, name, want)
			}
			if target := ptxTarget(ptx); target != ptxCC {
				t.Errorf("gpu/kernels/%s.ptx targets sm_%s, Open admits compute capability %s and newer", name, target, ptxCC)
			}
		}
		for name := range names {
			t.Errorf("%s holds kernels of %s.cu, which no longer exists: run go generate ./gpu/", generatedKernels, name)
		}
		sort.Strings(wantPTX)
		if got, want := committed.embeddedPaths(), ptxFilesIn(t, gpuDir, "kernels"); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, wantPTX) {
			t.Errorf("%s embeds %v, gpu/kernels holds %v, the sources make %v: run go generate ./gpu/", generatedKernels, got, want, wantPTX)
		}
	})

	// With nvcc: regenerating gives the same kernels, and with the recorded
	// nvcc release the very same files.
	t.Run("regenerate", func(t *testing.T) {
		nvcc, err := findNVCC()
		if err != nil {
			if os.Getenv(requireCUDAEnv) != "" {
				t.Fatalf("%s is set but nvcc is not available: %v", requireCUDAEnv, err)
			}
			t.Skipf("nvcc not available (%v): cannot regenerate the PTX; set %s=1 to make this a failure", err, requireCUDAEnv)
		}
		freshDir := t.TempDir()
		cmd := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "gen-kernels.sh"), freshDir)
		cmd.Env = append(os.Environ(), "NVCC="+nvcc)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gen-kernels.sh: %v\n%s", err, msg)
		}
		fresh := parseGenerated(t, filepath.Join(freshDir, generatedKernels))
		// The kernel lists and source hashes never depend on the compiler.
		if got, want := kernelFacts(committed), kernelFacts(fresh); got != want {
			t.Errorf("%s lists\n%s\nbut gen-kernels.sh now makes\n%s\nrun go generate ./gpu/", generatedKernels, got, want)
		}
		recorded, current := committed.consts["kernelsNVCCRelease"], fresh.consts["kernelsNVCCRelease"]
		if recorded != current {
			// Another compiler writes other PTX; only the same release can
			// reproduce the committed bytes.
			t.Logf("%s is from nvcc %s, this machine's nvcc (%s) is %s: compared kernel lists and sources only",
				generatedKernels, recorded, nvcc, current)
			return
		}
		if !bytes.Equal(fresh.src, committed.src) {
			t.Errorf("%s is not what scripts/gen-kernels.sh makes of kernels/*.cu with nvcc %s: run go generate ./gpu/",
				generatedKernels, current)
		}
		freshFiles := ptxFilesIn(t, freshDir, "kernels")
		if committedFiles := ptxFilesIn(t, gpuDir, "kernels"); !reflect.DeepEqual(committedFiles, freshFiles) {
			t.Errorf("gpu/kernels holds %v, gen-kernels.sh makes %v: run go generate ./gpu/", committedFiles, freshFiles)
		}
		for _, rel := range freshFiles {
			a := mustReadFile(t, filepath.Join(gpuDir, filepath.FromSlash(rel)))
			b := mustReadFile(t, filepath.Join(freshDir, filepath.FromSlash(rel)))
			if !bytes.Equal(a, b) {
				t.Errorf("gpu/%s is not what nvcc %s makes of its source: run go generate ./gpu/", rel, current)
			}
		}
	})
}

// kernelModules is the set of NAMEs for which a generated file records a
// NAMEKernelsSHA256.
func kernelModules(g generatedFile) map[string]bool {
	re := regexp.MustCompile(`^([a-z][a-z0-9]*)KernelsSHA256$`)
	names := map[string]bool{}
	for c := range g.consts {
		if m := re.FindStringSubmatch(c); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

// kernelFacts is the compiler-independent part of a generated file: each
// module's kernel list and source hash.
func kernelFacts(g generatedFile) string {
	var lines []string
	for name := range kernelModules(g) {
		lines = append(lines, name+" "+g.consts[name+"KernelsSHA256"]+" "+strconv.Quote(strings.Join(g.nameLists[name+"KernelNames"], ",")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
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

// TestKernelSizesMatchModel checks the layer widths mlp.cu is compiled with
// (dense_rows_at keeps a row's units in arrays of those sizes) against
// the model's.
func TestKernelSizesMatchModel(t *testing.T) {
	checkKernelDefines(t, []kernelDefine{
		{"IMAGE_SIZE", model.Inputs},
		{"HIDDEN1", model.Hidden1},
		{"HIDDEN2", model.Hidden2},
		{"CLASSES", model.Classes},
	})
}

// kernelDefine is a #define of gpu/kernels/mlp.cu and the value the Go
// side has for it.
type kernelDefine struct {
	name string
	want int
}

// checkKernelDefines checks that mlp.cu defines each name as its value.
func checkKernelDefines(t *testing.T, defines []kernelDefine) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "gpu", "kernels", "mlp.cu"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range defines {
		m := regexp.MustCompile(`(?m)^#define ` + c.name + ` (\d+)$`).FindSubmatch(src)
		if m == nil {
			t.Errorf("mlp.cu has no #define %s", c.name)
			continue
		}
		if got, _ := strconv.Atoi(string(m[1])); got != c.want {
			t.Errorf("mlp.cu: %s is %d, the Go side's is %d", c.name, got, c.want)
		}
	}
}
