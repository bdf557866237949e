package gpu

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCUDADepsDeterministic runs scripts/cuda-deps.sh into two fresh folders
// and a second time into the first: all three trees must be identical.
func TestCUDADepsDeterministic(t *testing.T) {
	skipIfVendored(t)
	needTool(t, "go")
	first, second := t.TempDir(), t.TempDir()

	runScript(t, "scripts/cuda-deps.sh", first)
	h1 := treeHash(t, first)
	runScript(t, "scripts/cuda-deps.sh", first)
	if h := treeHash(t, first); h != h1 {
		t.Errorf("rerunning cuda-deps.sh into the same folder changed the tree: %s then %s", h1, h)
	}
	runScript(t, "scripts/cuda-deps.sh", second)
	if h := treeHash(t, second); h != h1 {
		t.Errorf("cuda-deps.sh made different trees in two folders: %s and %s", h1, h)
	}
	checkAdaptedCU(t, first)
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

// checkModfiles: go.cuda.mod is go.mod plus the replace of cu, go.cuda.sum is
// go.sum.
func checkModfiles(t *testing.T, out string) {
	t.Helper()
	root := repoRoot(t)
	goMod := mustReadFile(t, filepath.Join(root, "go.mod"))
	cudaMod := mustReadFile(t, filepath.Join(out, "go.cuda.mod"))
	if !bytes.HasPrefix(cudaMod, goMod) {
		t.Errorf("go.cuda.mod does not start with go.mod")
	}
	extra := string(cudaMod[len(goMod):])
	if !regexp.MustCompile(`(?m)^replace gorgonia\.org/cu => \./\.cuda-deps/cu$`).MatchString(extra) {
		t.Errorf("go.cuda.mod lacks the replace of gorgonia.org/cu; it adds:\n%s", extra)
	}
	if strings.Count(extra, "replace") != 1 {
		t.Errorf("go.cuda.mod should add exactly one replace; it adds:\n%s", extra)
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
