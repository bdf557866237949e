//go:build unix

package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsOutWhenInterrupted: a run stopped by SIGINT during its first
// epoch still writes -metrics-out (marked interrupted, no finished epoch,
// the partial model scored on all test images) and -plot, and exits 130.
func TestMetricsOutWhenInterrupted(t *testing.T) {
	dir := realDataDir(t)
	out := t.TempDir()
	metricsPath, plotPath := filepath.Join(out, "m.json"), filepath.Join(out, "p.png")
	cmd := exec.Command(binary, "-data-dir", dir, "-log-format", "json", "-metrics-out", metricsPath, "-plot", plotPath)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	training := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		started := false
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if !started && strings.Contains(sc.Text(), `"msg":"training"`) {
				started = true
				close(training)
			}
		}
	}()
	select {
	case <-training:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		t.Fatalf("no start-up log entry within 2 minutes:\n%s", logs.String())
	}
	// Half a second is well inside the first epoch (about 3 s).
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-done // all of stderr read before Wait closes the pipe
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit code %d, want %d\n%s", code, exitInterrupted, logs.String())
	}
	doc := readMetrics(t, metricsPath)
	checkMetricsDoc(t, doc, 10000)
	if !*doc.Interrupted || len(doc.Epochs) != 0 {
		t.Errorf("interrupted %v with %d epochs, want true and 0", *doc.Interrupted, len(doc.Epochs))
	}
	checkPNG(t, plotPath)
	noTempFiles(t, out)
}
