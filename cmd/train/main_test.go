package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"mnist/gpu"
)

// binary is the train command built once for the tests that run it as a
// user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "train-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "train")
	build := exec.Command("go", append([]string{"build"}, append(sameModfile(), "-o", binary, ".")...)...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build train: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sameModfile is the -modfile flag that builds the binary against the
// Gorgonia this test binary was built against: `make test` builds the tests
// with the CPU build's adapted copy (scripts/cpu-deps.sh, go.cpu.mod), and
// the binary under test must be the one `make build` makes. (The cuda
// build's tests pass their mod file through GOFLAGS, which go build reads.)
func sameModfile() []string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	for _, d := range info.Deps {
		if d.Path == "gorgonia.org/gorgonia" && d.Replace != nil && strings.HasSuffix(filepath.ToSlash(d.Replace.Path), ".cpu-deps/gorgonia") {
			return []string{"-modfile", "../../go.cpu.mod"}
		}
	}
	return nil
}

// runTrain runs the built binary and returns its exit code and output.
//
// The tests that train for seconds with it call t.Parallel: a trainer keeps
// about one core busy when the cuda build runs its kernels on the CPU (make
// test-cuda-cpu), so two at a time keep CI's two cores busy. Tests that
// time signals, serve requests or set the environment stay serial.
func runTrain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run train %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// evaluationEntry finds the JSON log entry with msg "evaluation".
func evaluationEntry(t *testing.T, logs string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil && e["msg"] == "evaluation" {
			return e
		}
	}
	t.Fatalf("no evaluation entry in the logs:\n%s", logs)
	return nil
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{"-epochs", "-1"},
		{"-batch-size", "0"},
		{"-batch-size", "60001"},
		{"-lr", "0"},
		{"-lr", "-0.1"},
		{"-lr", "NaN"},
		{"-optimizer", "rmsprop"},
		{"-engine", "tpu"},
		{"-log-format", "xml"},
		{"-log-level", "loud"},
		{"-no-such-flag"},
		{"-epochs", "many"},
		{"stray-argument"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := runTrain(t, args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !oneLine(stderr) {
				t.Errorf("stderr is not one error line:\n%s", stderr)
			}
			if strings.Contains(stderr, "goroutine ") {
				t.Errorf("stderr has a stack trace:\n%s", stderr)
			}
		})
	}
}

func TestHelpExits0AndDocumentsFlags(t *testing.T) {
	code, _, stderr := runTrain(t, "-h")
	if code != exitOK {
		t.Fatalf("-h exit code %d, want 0", code)
	}
	for _, flag := range []string{"-epochs", "-batch-size", "-optimizer", "-lr", "-seed", "-engine", "-data-dir", "-log-level", "-log-format", "-gpu"} {
		if !strings.Contains(stderr, flag) {
			t.Errorf("-h does not document %s", flag)
		}
	}
	// The synopsis offers the engines this build has, no others.
	engines := "[-engine gorgonia]"
	if gpu.BuiltWithCUDA {
		engines = "[-engine " + strings.Join(gpu.EngineNames(), "|") + "]"
	}
	if !strings.Contains(stderr, "usage: train [") || !strings.Contains(stderr, engines) {
		t.Errorf("-h's usage should offer %s:\n%s", engines, stderr)
	}
}

func TestUnusableDataDirExits1(t *testing.T) {
	// A file where the data folder should be: nothing can be fetched into it.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runTrain(t, "-data-dir", notDir, "-download-only")
	if code != exitRuntime {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitRuntime, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "train: ") || !strings.Contains(last, notDir) {
		t.Errorf("last stderr line %q should be one error naming %s", last, notDir)
	}
}

// TestEndToEnd is the real thing: MNIST from the default data folder
// (downloaded if missing; this test fails rather than skips when it cannot
// be had), 5 epochs at batch 32, test accuracy of at least 97.5%.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("5-epoch training skipped in -short mode")
	}
	code, stdout, stderr := runTrain(t, "-log-format", "json")
	if code != exitOK {
		t.Fatalf("train exited %d:\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("json mode printed to stdout: %q", stdout)
	}
	e := evaluationEntry(t, stderr)
	for _, field := range []string{"test_accuracy", "test_loss", "train_seconds", "samples_per_second", "epochs", "batch_size", "seed", "device"} {
		if _, ok := e[field]; !ok {
			t.Errorf("evaluation entry lacks %q: %v", field, e)
		}
	}
	acc, _ := e["test_accuracy"].(float64)
	t.Logf("test accuracy %.4f, loss %v, %v s", acc, e["test_loss"], e["train_seconds"])
	if acc < 0.975 {
		t.Errorf("test accuracy %.4f, want >= 0.975", acc)
	}
	if e["epochs"] != 5.0 || e["batch_size"] != 32.0 || e["test_images"] != 10000.0 {
		t.Errorf("evaluation entry does not describe 5 epochs at batch 32 over 10,000 images: %v", e)
	}
	if n := strings.Count(stderr, `"msg":"epoch `); n != 5 {
		t.Errorf("%d per-epoch log entries, want 5", n)
	}
}
