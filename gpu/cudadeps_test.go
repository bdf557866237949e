package gpu

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCUDADepsDeterministic runs scripts/cuda-deps.sh into two fresh folders
// and a second time into the first: all three trees must be identical.
func TestCUDADepsDeterministic(t *testing.T) {
	first := runDeterministic(t, "scripts/cuda-deps.sh")
	checkAdaptedCU(t, first)
	checkAdaptedGorgonia(t, first)
}

// runDeterministic runs a dependency script into two fresh folders and a
// second time into the first, checks that all three trees are identical,
// and returns the first.
func runDeterministic(t *testing.T, script string) string {
	t.Helper()
	skipIfVendored(t)
	needTool(t, "go")
	first, second := t.TempDir(), t.TempDir()
	runScript(t, script, first)
	h1 := treeHash(t, first)
	runScript(t, script, first)
	if h := treeHash(t, first); h != h1 {
		t.Errorf("rerunning %s into the same folder changed the tree: %s then %s", script, h1, h)
	}
	runScript(t, script, second)
	if h := treeHash(t, second); h != h1 {
		t.Errorf("%s made different trees in two folders: %s and %s", script, h1, h)
	}
	return first
}

// TestCUDADepsModfileOnly checks the offline mode used with a vendor/ folder:
// it writes the mod files and nothing else.
func TestCUDADepsModfileOnly(t *testing.T) {
	out := t.TempDir()
	runScript(t, "scripts/cuda-deps.sh", "--modfile-only", out)
	checkModfiles(t, out)
	if _, err := os.Stat(filepath.Join(out, ".cuda-deps")); !os.IsNotExist(err) {
		t.Errorf("--modfile-only created .cuda-deps (stat: %v)", err)
	}
}

// checkModfiles: go.cuda.mod is go.mod plus the replaces of cu and gorgonia
// and nothing else but comments, go.cuda.sum is go.sum.
func checkModfiles(t *testing.T, out string) {
	t.Helper()
	root := repoRoot(t)
	goMod := mustReadFile(t, filepath.Join(root, "go.mod"))
	cudaMod := mustReadFile(t, filepath.Join(out, "go.cuda.mod"))
	if !bytes.HasPrefix(cudaMod, goMod) {
		t.Errorf("go.cuda.mod does not start with go.mod")
	}
	extra := string(cudaMod[len(goMod):])
	var directives []string
	for _, line := range strings.Split(extra, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "//") {
			directives = append(directives, line)
		}
	}
	want := []string{
		"replace gorgonia.org/cu => ./.cuda-deps/cu",
		"replace gorgonia.org/gorgonia => ./.cuda-deps/gorgonia",
	}
	if !slices.Equal(directives, want) {
		t.Errorf("go.cuda.mod should add exactly\n%s\nbut it adds:\n%s", strings.Join(want, "\n"), extra)
	}
	if !bytes.Equal(mustReadFile(t, filepath.Join(out, "go.cuda.sum")), mustReadFile(t, filepath.Join(root, "go.sum"))) {
		t.Errorf("go.cuda.sum differs from go.sum")
	}
}

// checkAdaptedCU checks that each of the adaptations is in place.
func checkAdaptedCU(t *testing.T, out string) {
	t.Helper()
	checkModfiles(t, out)
	root := repoRoot(t)
	cu := filepath.Join(out, ".cuda-deps", "cu")
	compat := filepath.Join(root, "scripts", "cudacompat")

	// Obstacle 1: cu/dnn is our stand-in and nothing else.
	entries, err := os.ReadDir(filepath.Join(cu, "dnn"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "cudnn.go" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dnn/ holds %v, want only cudnn.go", names)
	}
	sameFile(t, filepath.Join(cu, "dnn", "cudnn.go"), filepath.Join(compat, "cudnn.go.in"))

	// Obstacle 3: upstream cu.go (init with os.Exit) is replaced.
	if _, err := os.Stat(filepath.Join(cu, "cu.go")); !os.IsNotExist(err) {
		t.Errorf("upstream cu.go is still there (stat: %v)", err)
	}
	sameFile(t, filepath.Join(cu, "mnist_init.go"), filepath.Join(compat, "cu_init.go.in"))
	// ... and the driver is initialised on first use instead.
	if n := bytes.Count(mustReadFile(t, filepath.Join(cu, "api.go")), []byte("if err = Init(); err != nil {")); n != 2 {
		t.Errorf("api.go: NumDevices and GetDevice should call Init first; found %d calls, want 2", n)
	}

	// Obstacle 2: the compat header is there and no Go file calls an entry
	// point whose signature changed in CUDA 13 directly.
	sameFile(t, filepath.Join(cu, "mnist_cudacompat.h"), filepath.Join(compat, "mnist_cudacompat.h"))
	direct := regexp.MustCompile(`C\.(cuCtxCreate|cuMemAdvise|cuMemPrefetchAsync|cuGraphAddDependencies|cuGraphGetEdges)\(`)
	wrapped := regexp.MustCompile(`C\.mnist_cu[A-Za-z]+\(`)
	wrappedCalls := 0
	err = filepath.WalkDir(cu, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		src := mustReadFile(t, path)
		if m := direct.Find(src); m != nil {
			t.Errorf("%s still calls %s", path, m)
		}
		if bytes.Contains(src, []byte("os.Exit(")) {
			t.Errorf("%s calls os.Exit", path)
		}
		wrappedCalls += len(wrapped.FindAll(src, -1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// ctx.go 2, ctx_debug.go 2, cucontext.go 1, addressing.go 2, graph.go 2.
	if wrappedCalls != 9 {
		t.Errorf("found %d calls of mnist_* wrappers, want 9", wrappedCalls)
	}
}

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	if !bytes.Equal(mustReadFile(t, got), mustReadFile(t, want)) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// gorgoniaDropped are the folders of gorgonia.org/gorgonia that no build of
// ours reads; cuda-deps.sh leaves them out of the copy, as it does
// upstream's *_test.go files.
var gorgoniaDropped = []string{"examples", "media", "docs", ".github", "cmd", "cuda modules"}

// gorgoniaBannerLines are the lines of upstream cuda.go that the copy lacks,
// in order: the "log" import and the init function that logged the banner
// (with the blank line after it).
var gorgoniaBannerLines = []string{
	"\t\"log\"",
	"func init() {",
	"\tlog.Println(\"Using CUDA build\")",
	"}",
	"",
}

// gorgoniaContextLine is the line the copy's cuda/external.go adds before
// Engine.Run creates its cuBLAS handle.
const gorgoniaContextLine = "\tcu.SetCurrentContext(e.c.CUDAContext()) // mnist cuda-deps.sh: the handle is made in this context"

// The end of Engine.Close in upstream's cuda/external.go, and in the copy's,
// which stops the engine's Run goroutine before destroying the context.
const (
	gorgoniaCloseUpstream = "\tif err := e.c.Close(); err != nil {\n\t\treturn errors.Wrapf(err, \"Failed to cloes CUDA Context \")\n\t}\n\n" +
		"\truntime.Gosched() // make sure everyone has a fair play\n\te.finishChan <- struct{}{}\n\te.finishChan2 <- struct{}{} // wait\n"
	gorgoniaCloseAdapted = "\truntime.Gosched() // make sure everyone has a fair play\n\te.finishChan <- struct{}{}\n" +
		"\te.finishChan2 <- struct{}{} // wait: Run has stopped (mnist cuda-deps.sh: before the context goes, not after)\n\n" +
		"\tif err := e.c.Close(); err != nil {\n\t\treturn errors.Wrapf(err, \"Failed to cloes CUDA Context \")\n\t}\n"
)

// checkExternalGo checks that the adapted cuda/external.go is upstream's
// with line added once, right before the cuBLAS handle is made, and the end
// of Engine.Close reordered (gorgoniaCloseAdapted), nothing else.
func checkExternalGo(t *testing.T, rel string, upstream, adapted []byte, line string) {
	t.Helper()
	const before = "\te.b.Init(cublas.WithContext(&e.c))\n"
	if bytes.Count(upstream, []byte(before)) != 1 || bytes.Count(upstream, []byte(gorgoniaCloseUpstream)) != 1 {
		t.Fatalf("upstream %s does not create the cuBLAS handle once or end Engine.Close as expected; is this the gorgonia version cuda-deps.sh was written for?", rel)
	}
	want := bytes.Replace(upstream, []byte(before), []byte(line+"\n"+before), 1)
	want = bytes.Replace(want, []byte(gorgoniaCloseUpstream), []byte(gorgoniaCloseAdapted), 1)
	if !bytes.Equal(adapted, want) {
		t.Errorf("the adapted %s should be upstream's with %q added before the cuBLAS handle is made and Engine.Close stopping Run first", rel, line)
	}
}

// cudaRunAllLines is what the copy's vm_tape.go adds at the top of RunAll.
const cudaRunAllLines = "\tif m.runsHere() {\n\t\treturn m.runAllHere() // mnist cuda-deps.sh: nothing batched to flush\n\t}\n"

// checkAdaptedGorgonia compares the copy of gorgonia.org/gorgonia with the
// module cache: the dropped folders and upstream's tests are gone, cuda.go
// lacks exactly the banner's init and import, cuda/external.go has one line
// more (gorgoniaContextLine) and Engine.Close reordered, vm_tape.go has
// RunAll's lines and runAllHere,
// every other file is upstream's unchanged, and the only files added are
// MNIST-ADAPTED.md and vm_tape_mnist_cuda.go, which is
// scripts/cudacompat/vm_tape_run_here.go.in.
func checkAdaptedGorgonia(t *testing.T, out string) {
	t.Helper()
	adapted := filepath.Join(out, ".cuda-deps", "gorgonia")
	checkGorgoniaCopy(t, adapted, map[string]func(upstream, got []byte){
		"cuda.go": func(upstream, got []byte) { checkGorgoniaCUDAGo(t, upstream, got) },
		filepath.Join("cuda", "external.go"): func(upstream, got []byte) {
			checkExternalGo(t, filepath.Join("cuda", "external.go"), upstream, got, gorgoniaContextLine)
		},
		"vm_tape.go": func(upstream, got []byte) { checkRunAllHere(t, upstream, got, cudaRunAllLines) },
	}, map[string]string{
		"vm_tape_mnist_cuda.go": filepath.Join(repoRoot(t), "scripts", "cudacompat", "vm_tape_run_here.go.in"),
	})
	checkNoPrintingInit(t, adapted)
}

// checkGorgoniaCopy checks a copy of gorgonia.org/gorgonia that a
// dependency script wrote (cuda-deps.sh, cpu-deps.sh): every upstream file
// is there unchanged, but for the test files and the dropped folders,
// which are not, and the files in changed, each checked by its function
// against upstream's; nothing else is there but MNIST-ADAPTED.md and the
// files in added, each a copy of the file its value names.
func checkGorgoniaCopy(t *testing.T, adapted string, changed map[string]func(upstream, got []byte), added map[string]string) {
	t.Helper()
	upstream := moduleDir(t, "gorgonia.org/gorgonia")
	upstreamFiles := map[string]bool{}
	err := filepath.WalkDir(upstream, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(upstream, path)
		if err != nil {
			return err
		}
		upstreamFiles[rel] = true
		got, readErr := os.ReadFile(filepath.Join(adapted, rel))
		switch check := changed[rel]; {
		case gorgoniaDroppedFile(rel):
			if !os.IsNotExist(readErr) {
				t.Errorf("%s should have been left out of the copy (read: %v)", rel, readErr)
			}
		case readErr != nil:
			t.Errorf("%s is missing from the copy: %v", rel, readErr)
		case check != nil:
			check(mustReadFile(t, path), got)
		case !bytes.Equal(got, mustReadFile(t, path)):
			t.Errorf("%s differs from upstream's", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range gorgoniaDropped {
		if _, err := os.Stat(filepath.Join(adapted, dir)); !os.IsNotExist(err) {
			t.Errorf("folder %q should have been left out of the copy (stat: %v)", dir, err)
		}
	}
	err = filepath.WalkDir(adapted, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(adapted, path)
		if err != nil {
			return err
		}
		if !upstreamFiles[rel] && rel != "MNIST-ADAPTED.md" && added[rel] == "" {
			t.Errorf("%s is in the copy but not upstream", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, source := range added {
		sameFile(t, filepath.Join(adapted, rel), source)
	}
	if _, err := os.Stat(filepath.Join(adapted, "MNIST-ADAPTED.md")); err != nil {
		t.Errorf("the copy has no MNIST-ADAPTED.md: %v", err)
	}
}

func gorgoniaDroppedFile(rel string) bool {
	if strings.HasSuffix(rel, "_test.go") {
		return true
	}
	for _, dir := range gorgoniaDropped {
		if strings.HasPrefix(rel, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// checkGorgoniaCUDAGo checks that the adapted cuda.go is upstream's without
// the banner: no init function, no "log" import, and no other line changed.
func checkGorgoniaCUDAGo(t *testing.T, upstream, adapted []byte) {
	t.Helper()
	if !bytes.Contains(upstream, []byte("Using CUDA build")) {
		t.Fatalf("upstream cuda.go has no banner; is this the gorgonia version cuda-deps.sh was written for?")
	}
	if bytes.Contains(adapted, []byte("Using CUDA build")) {
		t.Errorf("the adapted cuda.go still has the banner")
	}
	f, err := parser.ParseFile(token.NewFileSet(), "cuda.go", adapted, parser.ImportsOnly|parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("the adapted cuda.go does not parse: %v", err)
	}
	for _, imp := range f.Imports {
		if imp.Path.Value == `"log"` {
			t.Errorf("the adapted cuda.go still imports log")
		}
	}
	f, err = parser.ParseFile(token.NewFileSet(), "cuda.go", adapted, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("the adapted cuda.go does not parse: %v", err)
	}
	for _, decl := range f.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == "init" {
			t.Errorf("the adapted cuda.go still has an init function")
		}
	}
	// The copy's lines must be upstream's with just the banner's removed.
	up := strings.Split(string(upstream), "\n")
	kept := strings.Split(string(adapted), "\n")
	var removed []string
	i := 0
	for _, line := range up {
		if i < len(kept) && kept[i] == line {
			i++
		} else {
			removed = append(removed, line)
		}
	}
	switch {
	case i < len(kept):
		t.Errorf("the adapted cuda.go has a line that upstream's lacks (line %d: %q)", i+1, kept[i])
	case !slices.Equal(removed, gorgoniaBannerLines):
		t.Errorf("the adapted cuda.go should be upstream's without the lines %q; it lacks %q", gorgoniaBannerLines, removed)
	}
}

// checkNoPrintingInit fails for an init function, in any file under dir that
// the cuda build compiles, that writes to the terminal itself: it calls a
// Print, Fatal or Panic function of log or fmt (Fprint* included), print or
// println, or names os.Stdout or os.Stderr. Helpers called from init are not
// followed; it is a guard against banners, not a proof.
func checkNoPrintingInit(t *testing.T, dir string) {
	t.Helper()
	ctxt := build.Default
	ctxt.BuildTags = []string{"cuda"}
	ctxt.CgoEnabled = true
	printing := regexp.MustCompile(`^(F?[Pp]rint|Fatal|Panic)`)
	fset := token.NewFileSet()
	inits := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		if match, err := ctxt.MatchFile(filepath.Dir(path), d.Name()); err != nil || !match {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || fn.Name.Name != "init" || fn.Body == nil {
				continue
			}
			inits++
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				var what string
				switch n := n.(type) {
				case *ast.CallExpr:
					if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "print" || id.Name == "println") {
						what = id.Name
					}
				case *ast.SelectorExpr:
					if pkg, ok := n.X.(*ast.Ident); ok {
						name := pkg.Name + "." + n.Sel.Name
						if (pkg.Name == "log" || pkg.Name == "fmt") && printing.MatchString(n.Sel.Name) ||
							name == "os.Stdout" || name == "os.Stderr" {
							what = name
						}
					}
				}
				if what != "" {
					t.Errorf("%s: an init function uses %s", fset.Position(n.Pos()), what)
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inits == 0 {
		t.Errorf("found no init function under %s: the check would not notice anything", dir)
	}
}

// moduleDir is the module cache folder of module at the version go.mod
// requires, downloaded (and checked against go.sum) if need be.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = repoRoot(t)
	// go.mod, not the cuda build's go.cuda.mod a caller may have in GOFLAGS.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s%s", module, err, out, stderr.String())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: no folder (%v%s)", module, err, info.Error)
	}
	return info.Dir
}
