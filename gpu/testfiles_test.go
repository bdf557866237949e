// Helpers of the tests that write files and run programs, in both builds.

package gpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// lookPathOrSkip returns the path of a program the test runs, or skips.
func lookPathOrSkip(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: %v", name, err)
	}
	return path
}

// copyFile copies from into to, making to's folders.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// writeFile writes text to path, making its folders.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeExecutable writes text to path, as writeFile does, and makes it
// executable: the stand-ins for the programs a script under test runs.
func writeExecutable(t *testing.T, path, text string) {
	t.Helper()
	writeFile(t, path, text)
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}
