//go:build unix && !cuda

package gpu

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Stand-ins for what scripts/gpu-host-run.sh runs on the GPU host. Each
// appends "KIND start|end SECONDS" to $EVENTS around its work, KIND
// naming the step it does that work for.
const (
	eventFunc = `ev() { echo "$1 $2 $(date +%s.%N)" >>"$EVENTS"; }
`
	goStandIn = "#!/bin/bash\n" + eventFunc + `[[ $1 == version ]] && { echo go version stand-in; exit 0; }
case " $* " in
*" -bench "*) kind=bench-gpu ;;
*"/gpu.test "*) kind=sanitize ;;
*" -c "*) kind=build-tests ;;
*" ./cmd/train/ "*) kind=test-cli ;;
*" ./gpu/ "*) kind=test-gpu ;;
*) echo "go stand-in: unexpected: $*" >&2; exit 2 ;;
esac
ev $kind start
case $kind in test-gpu | test-cli) sleep 2 ;; *) sleep 0.2 ;; esac
ev $kind end
`
	// bin/train-cuda: a finished run's log.
	trainStandIn = "#!/bin/bash\n" + eventFunc + `case " $* " in
*" -seed "*) kind=seeds ;;
*" -batch-size "*) kind=batches ;;
*) kind=train ;;
esac
ev $kind start
sleep 0.2
ev $kind end
printf '%s' '` + finishedRunLog + `'
`
	// make build-cuda installs the train-cuda stand-in; make train-cuda
	// runs it with TRAIN_FLAGS.
	makeStandIn = `#!/bin/bash
flags=
for a in "$@"; do
	case $a in TRAIN_FLAGS=*) flags=${a#TRAIN_FLAGS=} ;; esac
done
case " $* " in
*" build-cuda "*) mkdir -p bin && cp "$TRAIN_STANDIN" bin/train-cuda && chmod +x bin/train-cuda ;;
*" train-cuda "*) exec bin/train-cuda $flags ;;
*) echo "make stand-in: unexpected: $*" >&2; exit 2 ;;
esac
`
	torchRefStandIn = `import os, subprocess, sys, time
kind = "seeds" if "--seed" in sys.argv else "batches" if "--batch-size" in sys.argv else "torch"
def ev(what):
    with open(os.environ["EVENTS"], "a") as f:
        f.write(f"{kind} {what} {time.time()}\n")
ev("start")
time.sleep(0.2)
ev("end")
print('{"msg": "evaluation", "test_accuracy": 0.9758, "test_loss": 0.086, "train_seconds": 4, "samples_per_second": 75000}')
`
	sanitizerStandIn = "#!/bin/bash\n" + eventFunc + `ev sanitize start
sleep 0.7
ev sanitize end
`
	hostShareStandIn = "#!/bin/bash\n" + eventFunc + `ev host-share start
sleep 0.2
ev host-share end
echo '| step | host µs |'
`
)

// interval is when one stand-in call ran.
type interval struct{ start, end float64 }

// TestGPUHostRunTimesAloneTestsTogether runs the whole of
// scripts/gpu-host-run.sh against stand-ins for the toolchain, make, the
// trainer, PyTorch, the sanitizer and nvidia-smi. The timed steps (the
// training runs and PyTorch's, the batch sweep, the benchmarks, the host's
// share) must each run with nothing else running; the untimed ones (the
// GPU tests, the seeds, the trainer's tests, the sanitizer) must run
// together, all four at once; every step must be in the summary as ok, and
// the speed, seeds and batches tables written.
func TestGPUHostRunTimesAloneTestsTogether(t *testing.T) {
	bash := lookPathOrSkip(t, "bash")
	lookPathOrSkip(t, "python3")
	root := repoRoot(t)
	tree := t.TempDir()
	for _, f := range []string{"gpu-host-run.sh", "gpu_seeds_table.py", "bench_table.py"} {
		copyFile(t, filepath.Join(root, "scripts", f), filepath.Join(tree, "scripts", f))
	}
	writeFile(t, filepath.Join(tree, "go.mod"), "module stand-in\n")
	writeStandInBundle(t, tree, goStandIn)
	writeFile(t, filepath.Join(tree, ".gpu-bundle", "mnist", "train-images-idx3-ubyte.gz"), "stand-in")
	exe := func(path, text string) {
		writeFile(t, path, text)
		if err := os.Chmod(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fakeBin := filepath.Join(tree, "fakebin")
	cudaHome := filepath.Join(tree, "cuda")
	exe(filepath.Join(fakeBin, "make"), makeStandIn)
	exe(filepath.Join(fakeBin, "nvidia-smi"), "#!/bin/sh\necho stand-in GPU\n")
	exe(filepath.Join(tree, "standins", "train-cuda"), trainStandIn)
	exe(filepath.Join(tree, "scripts", "build-cuda.sh"), "#!/bin/bash\nexec \"$@\"\n")
	exe(filepath.Join(tree, "scripts", "host-overhead.sh"), hostShareStandIn)
	exe(filepath.Join(cudaHome, "bin", "compute-sanitizer"), sanitizerStandIn)
	writeFile(t, filepath.Join(tree, "scripts", "torch_mnist.py"), torchRefStandIn)

	events := filepath.Join(tree, "events.txt")
	results, packTo := filepath.Join(tree, "results"), filepath.Join(tree, "out")
	cmd := exec.Command(bash, filepath.Join(tree, "scripts", "gpu-host-run.sh"), results)
	cmd.Env = append(os.Environ(), "PATH="+fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"EVENTS="+events, "TRAIN_STANDIN="+filepath.Join(tree, "standins", "train-cuda"),
		"PACK_TO="+packTo, "GPU_WORK_DIR="+filepath.Join(tree, "work"), "CUDA_HOME="+cudaHome,
		"SEEDS=1 2", "BATCHES=32", "BUDGET_S=300", "RESUME=", "SKIP_TESTS=", "SKIP_TRAIN=", "SKIP_TORCH=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gpu-host-run.sh: %v\n%s", err, out)
	}

	summary, err := os.ReadFile(filepath.Join(packTo, "summary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"host", "unpack", "build", "build-tests", "nvidia-smi", "train-native", "torch", "torch-graph",
		"train-persistent", "train-fused", "train-cudagraph", "train-gorgonia", "batches", "bench-gpu", "host-share",
		"test-gpu", "seeds", "test-cli", "sanitize"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(step) + ` +ok +`).Match(summary) {
			t.Errorf("summary.txt has no ok line for %s:\n%s", step, summary)
		}
	}
	for _, table := range []string{"speed.md", "seeds.md", "batches.md"} {
		if _, err := os.Stat(filepath.Join(results, table)); err != nil {
			t.Errorf("no %s: %v", table, err)
		}
	}

	runs := readEvents(t, events)
	timed := []string{"train", "torch", "batches", "bench-gpu", "host-share"}
	together := []string{"test-gpu", "seeds", "test-cli", "sanitize"}
	for _, kind := range timed {
		for _, r := range runs[kind] {
			for other, rs := range runs {
				for _, o := range rs {
					if o != r && o.start < r.end && r.start < o.end {
						t.Errorf("a timed %s run (%.2f-%.2f) overlaps a %s run (%.2f-%.2f)", kind, r.start, r.end, other, o.start, o.end)
					}
				}
			}
		}
	}
	// All four at once: the last of them to start did so before the first
	// of them to finish finished.
	lastStart, firstEnd := 0.0, 0.0
	for i, kind := range together {
		rs := runs[kind]
		if len(rs) == 0 {
			t.Fatalf("no %s run", kind)
		}
		start, end := rs[0].start, rs[len(rs)-1].end
		if i == 0 || start > lastStart {
			lastStart = start
		}
		if i == 0 || end < firstEnd {
			firstEnd = end
		}
	}
	if lastStart >= firstEnd {
		t.Errorf("the untimed steps did not run together: the last started at %.2f, after the first finished at %.2f\n%v", lastStart, firstEnd, runs)
	}
}

// readEvents reads the stand-ins' events into each kind's runs, in order.
func readEvents(t *testing.T, path string) map[string][]interval {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runs := map[string][]interval{}
	open := map[string][]float64{} // kind -> starts not yet ended
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("event line %q", sc.Text())
		}
		at, err := strconv.ParseFloat(fields[2], 64)
		if err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		kind := fields[0]
		switch fields[1] {
		case "start":
			open[kind] = append(open[kind], at)
		case "end":
			if len(open[kind]) == 0 {
				t.Fatalf("%s ended without starting", kind)
			}
			runs[kind] = append(runs[kind], interval{open[kind][0], at})
			open[kind] = open[kind][1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return runs
}
