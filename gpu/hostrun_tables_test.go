//go:build !cuda

package gpu

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A finished run's last lines and one cut short by a time limit: both
// evaluate, but the second says "interrupted":true (cmd/train/report.go).
const (
	finishedRunLog = `{"epoch":5,"level":"info","msg":"epoch 5/5"}
{"batch_size":32,"msg":"evaluation","samples_per_second":150000,"seed":1,"test_accuracy":0.9761,"test_loss":0.0805,"train_seconds":2}
`
	interruptedRunLog = `{"epoch":1,"level":"info","msg":"epoch 1/5"}
{"batch_size":32,"interrupted":true,"msg":"evaluation","samples_per_second":500,"seed":1,"test_accuracy":0.9663,"test_loss":0.1061,"train_seconds":110}
{"exit_code":130,"level":"error","msg":"interrupted"}
`
	torchRunLog = `test: accuracy=97.58% loss=0.0860
{"msg": "evaluation", "test_accuracy": 0.9758, "test_loss": 0.086, "train_seconds": 4, "samples_per_second": 75000}
`
)

// TestGPUHostRunCountsOnlyFinishedRuns checks that scripts/gpu-host-run.sh
// (its evaluated function: which train-ENGINE log serves as seed 1, which
// runs a resumed call keeps) and the tables of scripts/gpu_seeds_table.py
// (seeds, batch sizes, and the timed runs with their speed against PyTorch)
// take a run cut short by its time limit for what it is: not a result.
func TestGPUHostRunCountsOnlyFinishedRuns(t *testing.T) {
	python := lookPathOrSkip(t, "python3")
	bash := lookPathOrSkip(t, "bash")
	root := repoRoot(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, text)
		return path
	}

	t.Run("evaluated", func(t *testing.T) {
		script := filepath.Join(root, "scripts", "gpu-host-run.sh")
		for _, tc := range []struct {
			name, log string
			want      bool
		}{
			{"finished", finishedRunLog, true},
			{"interrupted", interruptedRunLog, false},
			{"torch", torchRunLog, true},
			{"no evaluation", "{\"msg\":\"epoch 1/5\"}\n", false},
		} {
			log := write("evaluated/"+strings.ReplaceAll(tc.name, " ", "-")+".log", tc.log)
			cmd := exec.Command(bash, "-c", `set -euo pipefail; source <(sed -n '/^evaluated() {/,/^}/p' "$1"); evaluated "$2"`, "bash", script, log)
			err := cmd.Run()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if got := err == nil; got != tc.want {
				t.Errorf("%s: evaluated = %v, want %v", tc.name, got, tc.want)
			}
		}
	})

	t.Run("tables", func(t *testing.T) {
		write("seeds/seed-native-1.log", finishedRunLog)
		write("seeds/seed-persistent-1.log", interruptedRunLog)
		write("seeds/seed-torch_graph-1.log", torchRunLog)
		write("batches/batch-native-32.log", finishedRunLog)
		write("batches/batch-persistent-32.log", interruptedRunLog)
		write("batches/batch-torch_graph-32.log", torchRunLog)
		write("runs/train-native.log", finishedRunLog)
		write("runs/train-persistent.log", interruptedRunLog)
		write("runs/torch.log", torchRunLog)
		write("runs-no-torch/train-native.log", finishedRunLog)
		write("runs-no-torch/train-persistent.log", interruptedRunLog)
		table := filepath.Join(root, "scripts", "gpu_seeds_table.py")
		for _, tc := range []struct {
			args []string
			kept []string // the finished runs' figures or rows in this table
		}{
			{[]string{filepath.Join(dir, "seeds")}, []string{"97.61"}},
			{[]string{"--batches", filepath.Join(dir, "batches")}, []string{"150,000"}},
			// The speed-up column is our engines': PyTorch's row leaves it
			// empty rather than comparing PyTorch with itself.
			{[]string{"--runs", filepath.Join(dir, "runs")}, []string{
				"| train-native | 2.00 | 150,000 | 97.61 | 0.0805 | 2.00x |\n",
				"| torch-eager | 4.00 | 75,000 | 97.58 | 0.0860 |  |\n",
			}},
			// No PyTorch run finished: no speed-up column, and still a table.
			{[]string{"--runs", filepath.Join(dir, "runs-no-torch")}, []string{"| train-native | 2.00 | 150,000 | 97.61 | 0.0805 |\n"}},
		} {
			out, err := exec.Command(python, append([]string{table}, tc.args...)...).CombinedOutput()
			text := string(out)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("gpu_seeds_table.py %v: %v, want exit status 1 for the interrupted run\n%s", tc.args, err, text)
			}
			if !strings.Contains(text, "failed") || strings.Contains(text, "96.63") || strings.Contains(text, "| 500 |") {
				t.Errorf("gpu_seeds_table.py %v shows the interrupted run as a result:\n%s", tc.args, text)
			}
			for _, kept := range tc.kept {
				if !strings.Contains(text, kept) {
					t.Errorf("gpu_seeds_table.py %v lacks the finished run's %q:\n%s", tc.args, kept, text)
				}
			}
			if err := markdownTableShape(text); err != nil {
				t.Errorf("gpu_seeds_table.py %v: %v:\n%s", tc.args, err, text)
			}
		}
	})
}

// markdownTableShape checks that text is one markdown table whose rows all
// have as many cells as its delimiter row: a row of more or fewer is not
// rendered as a table at all (GitHub's tables need the header and the
// delimiter row to match).
func markdownTableShape(text string) error {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) < 3 {
		return fmt.Errorf("%d lines, want a header, a delimiter row and rows", len(lines))
	}
	cells := func(line string) int { return strings.Count(strings.TrimSpace(line), "|") - 1 }
	want := cells(lines[1])
	for i, line := range lines {
		if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") {
			return fmt.Errorf("line %d is not a table row: %q", i+1, line)
		}
		if got := cells(line); got != want {
			return fmt.Errorf("line %d has %d cells, the delimiter row %d: %q", i+1, got, want, line)
		}
	}
	return nil
}
