//go:build !cuda

package gpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// torchStub stands in for scripts/torch_mnist.py: it records the
// configuration each call asks for (MODE/ADAM SEED) and fails, as a capture
// that does not work would, where MODE/ADAM is in $TORCH_FAILS.
const torchStub = `import os, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
config = args.get("--mode", "eager") + "/" + args.get("--adam", "auto")
with open(os.environ["TORCH_CALLS"], "a") as f:
    f.write(config + " " + args["--seed"] + "\n")
if config in os.environ["TORCH_FAILS"].split():
    sys.exit("capture failed")
print('{"msg": "evaluation", "test_accuracy": 0.9758, "test_loss": 0.086, "train_seconds": 4, "samples_per_second": 75000}')
`

// TestGPUHostRunSeedsFallBack checks the seeds step of
// scripts/gpu-host-run.sh: PyTorch runs graph-captured with fused Adam, and
// where that fails, with torch's default Adam, then eagerly; a
// configuration that failed is not tried again for the later seeds, and the
// table names the configuration that served. Resuming, a seed that any
// configuration finished in an earlier call is not run again.
func TestGPUHostRunSeedsFallBack(t *testing.T) {
	lookPathOrSkip(t, "python3")
	bash := lookPathOrSkip(t, "bash")
	root := repoRoot(t)
	for _, tc := range []struct {
		name   string
		fails  string
		done   string // a log an earlier call left: resume
		calls  []string
		served string // the table's PyTorch column
	}{
		{"fused graph works", "", "", []string{"graph/auto 1", "graph/auto 2"}, "torch_graph acc"},
		{"fused capture fails", "graph/auto", "",
			[]string{"graph/auto 1", "graph/default 1", "graph/default 2"}, "torch_graph_foreach acc"},
		{"every capture fails", "graph/auto graph/default", "",
			[]string{"graph/auto 1", "graph/default 1", "eager/auto 1", "eager/auto 2"}, "torch_eager acc"},
		{"resumed after a fallback", "", "seed-torch_graph_foreach-1.log", []string{"graph/auto 2"}, "torch_graph acc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := t.TempDir()
			for _, f := range []string{"gpu-host-run.sh", "gpu_seeds_table.py", "bench_table.py"} {
				copyFile(t, filepath.Join(root, "scripts", f), filepath.Join(tree, "scripts", f))
			}
			writeFile(t, filepath.Join(tree, "scripts", "torch_mnist.py"), torchStub)
			writeExecutable(t, filepath.Join(tree, "bin", "train-cuda"), "#!/bin/sh\nprintf '%s' '"+finishedRunLog+"'\n")
			calls := filepath.Join(tree, "torch-calls.txt")
			results := filepath.Join(tree, "results")
			resume := ""
			if tc.done != "" {
				writeFile(t, filepath.Join(results, "seeds", tc.done), torchRunLog)
				resume = "1"
			}
			cmd := exec.Command(bash, filepath.Join(tree, "scripts", "gpu-host-run.sh"), "--step", "seeds", results)
			cmd.Env = append(os.Environ(), "SEEDS=1 2", "TORCH_CALLS="+calls, "TORCH_FAILS="+tc.fails, "RESUME="+resume)
			out, err := cmd.CombinedOutput()
			// The step fails where a run failed (its table says "failed"),
			// and passes where every run finished.
			if (err == nil) != (tc.fails == "") {
				t.Errorf("seeds step: %v\n%s", err, out)
			}
			got, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			if lines := strings.Split(strings.TrimSpace(string(got)), "\n"); !slices.Equal(lines, tc.calls) {
				t.Errorf("PyTorch runs %q, want %q", lines, tc.calls)
			}
			table, err := os.ReadFile(filepath.Join(results, "seeds.md"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(table), tc.served) {
				t.Errorf("seeds.md has no %q column:\n%s", tc.served, table)
			}
		})
	}
}
