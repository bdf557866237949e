package gpu

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// gorgoniaPTXDir holds the PTX files of Gorgonia's kernels, relative to gpu/.
const gorgoniaPTXDir = "kernels/gorgonia"

// TestPTXRegistrations checks the committed gpu/ptx_cuda.go and the PTX files
// it embeds on their own: each module registers exactly the kernels its PTX
// file defines, for the architecture the file claims; each PTX file is the one
// the Go file was generated with (its SHA-256), and every .ptx of the folder is
// embedded; the modules Gorgonia's ops need are all there.
func TestPTXRegistrations(t *testing.T) {
	gpuDir := filepath.Join(repoRoot(t), "gpu")
	file := parseGenerated(t, filepath.Join(gpuDir, "ptx_cuda.go"))
	if !file.generatedTag {
		t.Error(`ptx_cuda.go lacks the "Code generated ... DO NOT EDIT." line`)
	}
	computeCap, _ := strconv.Atoi(file.consts["ptxComputeCapability"])
	if computeCap == 0 || file.consts["ptxNVCCRelease"] == "" {
		t.Errorf("ptx_cuda.go lacks ptxComputeCapability/ptxNVCCRelease (%q, %q)",
			file.consts["ptxComputeCapability"], file.consts["ptxNVCCRelease"])
	}
	if got, want := file.embeddedPaths(), ptxFilesIn(t, gpuDir, gorgoniaPTXDir); !reflect.DeepEqual(got, want) {
		t.Errorf("ptx_cuda.go embeds %v but gpu/%s holds %v: run go generate ./gpu/", got, gorgoniaPTXDir, want)
	}
	seen := map[string]bool{}
	for _, m := range file.stdLib {
		if seen[m.name] {
			t.Errorf("module %s registered twice", m.name)
		}
		seen[m.name] = true
		ptx := file.embedded(t, m.ptxVar)
		if want := ptxEntries(ptx); len(want) == 0 || !reflect.DeepEqual(m.funcs, want) {
			t.Errorf("module %s registers %v but its PTX defines %v", m.name, m.funcs, want)
		}
		if target := ptxTarget(ptx); target != strconv.Itoa(computeCap) {
			t.Errorf("module %s: PTX target sm_%s, want sm_%d", m.name, target, computeCap)
		}
		if recorded, actual := file.consts[m.ptxVar+"SHA256"], sha256Hex(ptx); recorded != actual {
			t.Errorf("%s (module %s) has SHA-256 %s but ptx_cuda.go was generated with %q: edited by hand? run go generate ./gpu/",
				file.embeds[m.ptxVar], m.name, actual, recorded)
		}
	}
	// Gorgonia's CUDA ops and engine look these modules up (op_math_cuda.go,
	// cuda/arith.go, cuda/cmp.go, cuda/engine.go).
	for _, need := range []string{"elembinop", "elemunaryop", "misc"} {
		if !seen[need] {
			t.Errorf("module %s is not registered", need)
		}
	}
}

// TestPTXMatchesNVCC regenerates with scripts/gen-ptx.sh into a temporary
// folder and compares: the same modules must register the same kernels for
// the same architecture, and with the nvcc release the committed files were
// made with, ptx_cuda.go and every PTX file must be identical.
func TestPTXMatchesNVCC(t *testing.T) {
	skipIfVendored(t)
	nvcc := needTool(t, "nvcc")
	freshDir := t.TempDir()
	runScript(t, "scripts/gen-ptx.sh", freshDir)

	committedDir := filepath.Join(repoRoot(t), "gpu")
	committed := parseGenerated(t, filepath.Join(committedDir, "ptx_cuda.go"))
	fresh := parseGenerated(t, filepath.Join(freshDir, "ptx_cuda.go"))
	names := func(f generatedFile) map[string][]string {
		m := map[string][]string{}
		for _, mod := range f.stdLib {
			m[mod.name] = mod.funcs
		}
		return m
	}
	if got, want := names(committed), names(fresh); !reflect.DeepEqual(got, want) {
		t.Errorf("gpu/ptx_cuda.go registers\n%v\nbut nvcc now produces\n%v\nrun go generate ./gpu/", got, want)
	}
	if got, want := committed.consts["ptxComputeCapability"], fresh.consts["ptxComputeCapability"]; got != want {
		t.Errorf("committed PTX is for compute %s, gen-ptx.sh now makes %s", got, want)
	}
	version, err := exec.Command(nvcc, "--version").Output()
	if err != nil {
		t.Fatalf("nvcc --version: %v", err)
	}
	recorded, current := committed.consts["ptxNVCCRelease"], fresh.consts["ptxNVCCRelease"]
	if recorded != current {
		t.Logf("nvcc here is %s (%s), the committed PTX was made by %s: compared kernel lists only",
			current, bytes.TrimSpace(version), recorded)
		return
	}
	if !bytes.Equal(committed.src, fresh.src) {
		t.Errorf("gpu/ptx_cuda.go is stale: nvcc %s produces a different file; run go generate ./gpu/", current)
	}
	freshFiles := ptxFilesIn(t, freshDir, gorgoniaPTXDir)
	if committedFiles := ptxFilesIn(t, committedDir, gorgoniaPTXDir); !reflect.DeepEqual(committedFiles, freshFiles) {
		t.Errorf("gpu/%s holds %v, gen-ptx.sh makes %v; run go generate ./gpu/", gorgoniaPTXDir, committedFiles, freshFiles)
	}
	for _, rel := range freshFiles {
		a := mustReadFile(t, filepath.Join(committedDir, filepath.FromSlash(rel)))
		b := mustReadFile(t, filepath.Join(freshDir, filepath.FromSlash(rel)))
		if !bytes.Equal(a, b) {
			t.Errorf("gpu/%s is not what nvcc %s makes: run go generate ./gpu/", rel, current)
		}
	}
}
