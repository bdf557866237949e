package gpu

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"testing"
)

// ptxModule is one gorgonia.AddToStdLib registration of ptx_cuda.go.
type ptxModule struct {
	name  string
	ptx   string
	funcs []string
}

// ptxFile is what a generated ptx_cuda.go declares.
type ptxFile struct {
	modules      []ptxModule
	computeCap   int    // ptxComputeCapability
	nvccRelease  string // ptxNVCCRelease
	generatedTag bool   // has the "Code generated ... DO NOT EDIT." line
}

// parsePTXFile reads a ptx_cuda.go with go/parser (it carries the cuda build
// tag, so it is not part of this test binary otherwise).
func parsePTXFile(t *testing.T, path string) ptxFile {
	t.Helper()
	src := mustReadFile(t, path)
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	out := ptxFile{generatedTag: regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`).Match(src)}
	consts := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				switch lit.Kind {
				case token.STRING:
					if consts[name.Name], err = strconv.Unquote(lit.Value); err != nil {
						t.Fatalf("%s: const %s: %v", path, name.Name, err)
					}
				case token.INT:
					if name.Name == "ptxComputeCapability" {
						out.computeCap, _ = strconv.Atoi(lit.Value)
					}
				}
			}
		}
	}
	out.nvccRelease = consts["ptxNVCCRelease"]
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "AddToStdLib" {
			return true
		}
		if len(call.Args) != 3 {
			t.Fatalf("%s: AddToStdLib with %d arguments", path, len(call.Args))
		}
		var m ptxModule
		nameLit, ok1 := call.Args[0].(*ast.BasicLit)
		ptxIdent, ok2 := call.Args[1].(*ast.Ident)
		funcsLit, ok3 := call.Args[2].(*ast.CompositeLit)
		if !ok1 || !ok2 || !ok3 {
			t.Fatalf("%s: unexpected AddToStdLib arguments", path)
		}
		m.name, _ = strconv.Unquote(nameLit.Value)
		if m.ptx, ok = consts[ptxIdent.Name]; !ok {
			t.Fatalf("%s: module %s uses undeclared PTX constant %s", path, m.name, ptxIdent.Name)
		}
		for _, e := range funcsLit.Elts {
			lit, ok := e.(*ast.BasicLit)
			if !ok {
				t.Fatalf("%s: module %s: non-literal function name", path, m.name)
			}
			fn, _ := strconv.Unquote(lit.Value)
			m.funcs = append(m.funcs, fn)
		}
		out.modules = append(out.modules, m)
		return true
	})
	return out
}

// ptxEntries lists the kernel entry points a PTX module defines.
func ptxEntries(ptx string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\.visible \.entry ([A-Za-z_][A-Za-z0-9_]*)\(`).FindAllStringSubmatch(ptx, -1) {
		names = append(names, m[1])
	}
	return names
}

// TestPTXRegistrations checks the committed gpu/ptx_cuda.go on its own: each
// module registers exactly the kernels its embedded PTX defines, for the
// architecture the file claims, and the modules Gorgonia's ops need are all
// there.
func TestPTXRegistrations(t *testing.T) {
	file := parsePTXFile(t, filepath.Join(repoRoot(t), "gpu", "ptx_cuda.go"))
	if !file.generatedTag {
		t.Error(`ptx_cuda.go lacks the "Code generated ... DO NOT EDIT." line`)
	}
	if file.computeCap == 0 || file.nvccRelease == "" {
		t.Errorf("ptx_cuda.go lacks ptxComputeCapability/ptxNVCCRelease (%d, %q)", file.computeCap, file.nvccRelease)
	}
	seen := map[string]bool{}
	for _, m := range file.modules {
		if seen[m.name] {
			t.Errorf("module %s registered twice", m.name)
		}
		seen[m.name] = true
		if want := ptxEntries(m.ptx); len(want) == 0 || !reflect.DeepEqual(m.funcs, want) {
			t.Errorf("module %s registers %v but its PTX defines %v", m.name, m.funcs, want)
		}
		target := regexp.MustCompile(`(?m)^\.target sm_([0-9]+)\b`).FindStringSubmatch(m.ptx)
		if target == nil || target[1] != strconv.Itoa(file.computeCap) {
			t.Errorf("module %s: PTX target %v, want sm_%d", m.name, target, file.computeCap)
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

// TestPTXMatchesNVCC regenerates the file with scripts/gen-ptx.sh and
// compares: the same modules must register the same kernels, and with the
// nvcc release the committed file was made with, the files must be identical.
func TestPTXMatchesNVCC(t *testing.T) {
	skipIfVendored(t)
	nvcc := needTool(t, "nvcc")
	regenerated := filepath.Join(t.TempDir(), "ptx_cuda.go")
	runScript(t, "scripts/gen-ptx.sh", regenerated)

	committedPath := filepath.Join(repoRoot(t), "gpu", "ptx_cuda.go")
	committed, fresh := parsePTXFile(t, committedPath), parsePTXFile(t, regenerated)
	names := func(f ptxFile) map[string][]string {
		m := map[string][]string{}
		for _, mod := range f.modules {
			m[mod.name] = mod.funcs
		}
		return m
	}
	if got, want := names(committed), names(fresh); !reflect.DeepEqual(got, want) {
		t.Errorf("gpu/ptx_cuda.go registers\n%v\nbut nvcc now produces\n%v\nrun scripts/gen-ptx.sh", got, want)
	}
	if committed.computeCap != fresh.computeCap {
		t.Errorf("committed PTX is for compute %d, gen-ptx.sh now makes %d", committed.computeCap, fresh.computeCap)
	}
	version, err := exec.Command(nvcc, "--version").Output()
	if err != nil {
		t.Fatalf("nvcc --version: %v", err)
	}
	if fresh.nvccRelease == committed.nvccRelease {
		if !bytes.Equal(mustReadFile(t, committedPath), mustReadFile(t, regenerated)) {
			t.Errorf("gpu/ptx_cuda.go is stale: nvcc %s produces a different file; run scripts/gen-ptx.sh", fresh.nvccRelease)
		}
	} else {
		t.Logf("nvcc here is %s (%s), the committed PTX was made by %s: compared kernel lists only",
			fresh.nvccRelease, bytes.TrimSpace(version), committed.nvccRelease)
	}
}
