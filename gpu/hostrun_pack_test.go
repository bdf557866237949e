//go:build unix && !cuda

package gpu

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGPUHostRunPacksAsItGoes checks that scripts/gpu-host-run.sh with
// PACK_TO leaves summary.txt and results.tgz there after every step, not
// only from its EXIT trap: a runner whose time limit is shorter than the
// script's budget kills it with SIGKILL, which runs no trap, and then
// brings back only what is already in PACK_TO. The script runs against a
// bundle whose toolchain is a stand-in, its build fails at once, and it is
// killed while its nvidia-smi (a stand-in that sleeps) runs: PACK_TO must
// hold the summary of the steps before it and their logs.
func TestGPUHostRunPacksAsItGoes(t *testing.T) {
	bash := lookPathOrSkip(t, "bash")
	root := repoRoot(t)
	tree := t.TempDir()
	copyFile(t, filepath.Join(root, "scripts", "gpu-host-run.sh"), filepath.Join(tree, "scripts", "gpu-host-run.sh"))

	writeStandInBundle(t, tree, "#!/bin/sh\necho go version stand-in\n")
	fakeBin := filepath.Join(tree, "fakebin")
	writeExecutable(t, filepath.Join(fakeBin, "nvidia-smi"), "#!/bin/sh\nexec sleep 60\n")

	packTo := filepath.Join(tree, "out")
	cmd := exec.Command(bash, filepath.Join(tree, "scripts", "gpu-host-run.sh"), filepath.Join(tree, "results"))
	cmd.Env = append(os.Environ(), "PATH="+fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PACK_TO="+packTo, "GPU_WORK_DIR="+filepath.Join(tree, "work"), "CUDA_HOME="+filepath.Join(tree, "no-cuda"),
		"SKIP_TESTS=1", "SKIP_TRAIN=1", "BUDGET_S=300", "RESUME=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the script, timeout and the stand-in
		}
	}
	defer kill()
	timer := time.AfterFunc(60*time.Second, kill)
	defer timer.Stop()
	var log strings.Builder
	lines := bufio.NewScanner(stdout)
	reached := false
	for lines.Scan() {
		log.WriteString(lines.Text() + "\n")
		if strings.HasPrefix(lines.Text(), "=== nvidia-smi (limit") {
			reached = true
			kill()
			break
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	_ = cmd.Wait()
	if !reached {
		t.Fatalf("gpu-host-run.sh never started its nvidia-smi step:\n%s", log.String())
	}

	summary, err := os.ReadFile(filepath.Join(packTo, "summary.txt"))
	if err != nil {
		t.Fatalf("killed during nvidia-smi, PACK_TO has no summary: %v\n%s", err, log.String())
	}
	for _, step := range []string{"host ", "unpack ", "build "} {
		if !strings.Contains(string(summary), "\n"+step) {
			t.Errorf("PACK_TO/summary.txt lacks the %q step:\n%s", strings.TrimSpace(step), summary)
		}
	}
	got := tarNames(t, filepath.Join(packTo, "results.tgz"))
	for _, want := range []string{"results/host.log", "results/unpack.log", "results/build.log", "results/summary.txt"} {
		if !got[want] {
			t.Errorf("PACK_TO/results.tgz lacks %s (holds %v)", want, got)
		}
	}
	if parts, _ := filepath.Glob(filepath.Join(packTo, "*.part")); len(parts) > 0 {
		t.Errorf("PACK_TO holds unfinished files %v", parts)
	}
}

// tarNames lists the regular files of a .tgz.
func tarNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	names := map[string]bool{}
	r := tar.NewReader(z)
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			names[h.Name] = true
		}
	}
}

// writeStandInBundle writes, into tree/.gpu-bundle, a bundle of the form
// scripts/gpu-bundle.sh makes whose Go toolchain is the script goScript
// (go/bin/go) and whose vendor/ holds only modules.txt.
func writeStandInBundle(t *testing.T, tree, goScript string) {
	t.Helper()
	lookPathOrSkip(t, "xz")
	bundle := filepath.Join(tree, ".gpu-bundle")
	staging := t.TempDir()
	writeExecutable(t, filepath.Join(staging, "go", "bin", "go"), goScript)
	writeFile(t, filepath.Join(staging, "vendor", "modules.txt"), "# stand-in\n")
	writeFile(t, filepath.Join(bundle, "MANIFEST.txt"), "made: for a test\n")
	writeFile(t, filepath.Join(bundle, "go-toolchain.id"), "go0 linux/"+runtime.GOARCH+"\n")
	for name, dir := range map[string]string{"go-toolchain.tar.xz": "go", "vendor.tar.xz": "vendor"} {
		if out, err := exec.Command("tar", "-C", staging, "-cJf", filepath.Join(bundle, name), dir).CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v\n%s", name, err, out)
		}
	}
}
