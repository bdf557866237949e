//go:build unix

package main

import (
	"path/filepath"
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
	// Half a second is well inside the first epoch at batch 8 (about 2.3 s).
	code, _, logs := interruptTrain(t, syscall.SIGINT, 500*time.Millisecond,
		"-data-dir", dir, "-log-format", "json", "-batch-size", "8", "-metrics-out", metricsPath, "-plot", plotPath)
	if code != exitInterrupted {
		t.Fatalf("exit code %d, want %d\n%s", code, exitInterrupted, logs)
	}
	doc := readMetrics(t, metricsPath)
	checkMetricsDoc(t, doc, 10000)
	if !*doc.Interrupted || len(doc.Epochs) != 0 {
		t.Errorf("interrupted %v with %d epochs, want true and 0", *doc.Interrupted, len(doc.Epochs))
	}
	checkPNG(t, plotPath)
	noTempFiles(t, out)
}
