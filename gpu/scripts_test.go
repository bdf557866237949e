package gpu

// Helpers shared by the tests of the cuda build scripts. These tests carry no
// build tag: they check scripts and generated files, not a GPU, so they run
// in the ordinary `go test ./...` too.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
)

// requireCUDAEnv makes a missing CUDA toolchain fatal: CI sets it because it
// installs the toolkit, so there a skip would hide a broken check.
const requireCUDAEnv = "MNIST_REQUIRE_CUDA"

// repoRoot is the repository root, found from this file's location.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source file")
	}
	return filepath.Dir(filepath.Dir(file))
}

// needTool returns the path of an external program the test needs. Without it
// the test is skipped, unless MNIST_REQUIRE_CUDA is set, where it fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv(requireCUDAEnv) != "" {
		t.Fatalf("%s not found but %s is set: %v", name, requireCUDAEnv, err)
	}
	t.Skipf("%s not found (install the CUDA toolkit to run this test): %v", name, err)
	return ""
}

// needCUDAHome returns the CUDA toolkit root whose include/cuda.h the cuda
// build would use: CUDA_HOME, /usr/local/cuda or /usr (Debian's packages),
// the first that has one. Without one the test is skipped, unless
// MNIST_REQUIRE_CUDA is set, where it fails.
func needCUDAHome(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("CUDA_HOME"), "/usr/local/cuda", "/usr"} {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "include", "cuda.h")); err == nil {
			return dir
		}
	}
	if os.Getenv(requireCUDAEnv) != "" {
		t.Fatalf("no cuda.h found but %s is set", requireCUDAEnv)
	}
	t.Skip("no cuda.h found (install the CUDA toolkit to run this test)")
	return ""
}

// skipIfVendored skips tests that need the module cache or the module proxy
// when the tree builds from a vendor/ folder, i.e. offline on the GPU host,
// where the generated files were made beforehand.
func skipIfVendored(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(repoRoot(t), "vendor", "modules.txt")); err == nil {
		t.Skip("vendored offline build: the module cache needed to regenerate is not available")
	}
}

// runScript runs a script of the repository with args and fails the test,
// showing its output, if it fails.
func runScript(t *testing.T, script string, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(t), script)}, args...)...)
	cmd.Dir = repoRoot(t)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out.String())
	}
}

// treeHash hashes every path, file mode and file content under dir, so two
// trees hash the same exactly when they hold the same files.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", filepath.ToSlash(rel), info.Mode())
		if d.Type().IsRegular() {
			content, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(content))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("hashing %s: %v", dir, err)
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// mustReadFile returns the content of a file or fails the test.
func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
