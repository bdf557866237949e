package gpu

// This test has no build tag: it builds the cuda binary with the script
// users run, so the CPU build's `go test ./...` checks it wherever a CUDA
// toolkit is installed (no GPU needed).

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCUDABinaryStderr builds the trainer with scripts/build-cuda.sh and
// runs it with bad input: stderr must start with the trainer's own error,
// so nothing may print before main. Upstream gorgonia's cuda.go logged
// "Using CUDA build" from an init function; scripts/cuda-deps.sh removes it.
// The inputs fail before any GPU is touched, so the results are the same
// with and without one.
func TestCUDABinaryStderr(t *testing.T) {
	needTool(t, "go")
	needTool(t, "gcc")
	cudaHome := needCUDAHome(t)

	bin := filepath.Join(t.TempDir(), "train-cuda")
	build := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "build-cuda.sh"))
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "CUDA_HOME="+cudaHome, "TRAIN_CUDA_BIN="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-cuda.sh: %v\n%s", err, out)
	}

	// A file where the data folder should be: the trainer fails creating it.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		wantCode int
		// check gets stderr and returns what is wrong with it, or "".
		check func(stderr string) string
	}{
		{
			name:     "usage error",
			args:     []string{"-batch-size", "0"},
			wantCode: 2,
			check: func(stderr string) string {
				if stderr != "train: -batch-size must be from 1 to 60000 (the training set's size), got 0\n" {
					return "want only the error line"
				}
				return ""
			},
		},
		{
			name:     "runtime error",
			args:     []string{"-epochs", "1", "-data-dir", notDir},
			wantCode: 1,
			check:    oneErrorLine(notDir),
		},
		{
			name:     "runtime error, JSON logs",
			args:     []string{"-epochs", "1", "-data-dir", notDir, "-log-format", "json"},
			wantCode: 1,
			check:    oneJSONErrorLine(notDir),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &exit):
				code = exit.ExitCode()
			default:
				t.Fatalf("run %s: %v", bin, err)
			}
			if strings.Contains(stderr.String(), "error while loading shared libraries") {
				// Linking used the toolkit's stub libcuda.so; running needs
				// libcuda.so.1 from the NVIDIA driver (Debian: libcuda1).
				if os.Getenv(requireCUDAEnv) != "" {
					t.Fatalf("%s cannot start but %s is set:\n%s", bin, requireCUDAEnv, stderr.String())
				}
				t.Skipf("%s cannot start here (no NVIDIA driver library):\n%s", bin, stderr.String())
			}
			if code != c.wantCode {
				t.Errorf("exit code %d, want %d", code, c.wantCode)
			}
			if problem := c.check(stderr.String()); problem != "" {
				t.Errorf("%s; stderr of %v was:\n%s", problem, c.args, stderr.String())
			}
		})
	}
}

// oneErrorLine accepts a stderr that is exactly one line, the trainer's
// error naming path.
func oneErrorLine(path string) func(string) string {
	return func(stderr string) string {
		if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") ||
			!strings.HasPrefix(stderr, "train: ") || !strings.Contains(stderr, path) {
			return "want exactly one line, the error naming " + path
		}
		return ""
	}
}

// oneJSONErrorLine accepts a stderr that is exactly one line, the trainer's
// error as a JSON log entry (-log-format json) naming path.
func oneJSONErrorLine(path string) func(string) string {
	return func(stderr string) string {
		var e struct {
			Level, Msg string
			ExitCode   int `json:"exit_code"`
		}
		if strings.Count(stderr, "\n") != 1 || json.Unmarshal([]byte(stderr), &e) != nil ||
			e.Level != "error" || e.ExitCode != 1 || !strings.Contains(e.Msg, path) {
			return "want exactly one line, the error as a JSON entry naming " + path
		}
		return ""
	}
}
