//go:build unix && !cuda

package gpu

import (
	"os"
	"strings"
	"testing"
)

// TestGPUHostRunForgetsEarlierCalls calls scripts/gpu-host-run.sh without
// training or tests, in a RESULTS_DIR where an earlier call left a
// training log, PyTorch's log, the three tables, a seeds run and the
// placement listing. Without RESUME none of them may be in this call's
// summary or results, since this call ran none of them; a file that is not
// the script's stays. With RESUME the earlier results are carried on, as
// a resumed call's summary needs.
func TestGPUHostRunForgetsEarlierCalls(t *testing.T) {
	earlier := map[string]string{
		"train-native.log":       finishedRunLog,
		"torch.log":              torchRunLog,
		"speed.md":               "| earlier speed table |\n",
		"seeds.md":               "| earlier seeds table |\n",
		"batches.md":             "| earlier batches table |\n",
		"placement.txt":          "earlier placement\n",
		"seeds/seed-fused-2.log": finishedRunLog,
	}
	for _, tc := range []struct {
		resume string
		kept   bool
	}{
		{resume: "", kept: false},
		{resume: "1", kept: true},
	} {
		t.Run("RESUME="+tc.resume, func(t *testing.T) {
			h := newStandInHost(t)
			for name, text := range earlier {
				writeFile(t, h.path("results", name), text)
			}
			writeFile(t, h.path("results", "notes.txt"), "the user's\n")
			if out, err := h.run("RESUME="+tc.resume, "SKIP_TRAIN=1", "SKIP_TESTS=1"); err != nil {
				t.Fatalf("gpu-host-run.sh: %v\n%s", err, out)
			}
			summary, err := os.ReadFile(h.path("results", "summary.txt"))
			if err != nil {
				t.Fatal(err)
			}
			for _, shown := range []string{"train-native, last lines", "torch, last lines", "earlier speed table", "earlier seeds table", "earlier batches table"} {
				if got := strings.Contains(string(summary), shown); got != tc.kept {
					t.Errorf("summary.txt shows %q: %v, want %v:\n%s", shown, got, tc.kept, summary)
				}
			}
			for name := range earlier {
				_, err := os.Stat(h.path("results", name))
				if got := err == nil; got != tc.kept {
					t.Errorf("the earlier call's %s is there: %v, want %v", name, got, tc.kept)
				}
			}
			if _, err := os.Stat(h.path("results", "notes.txt")); err != nil {
				t.Errorf("a file not the script's was removed: %v", err)
			}
		})
	}
}
