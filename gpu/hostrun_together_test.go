//go:build unix && !cuda

package gpu

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
# The untimed steps start one after another; 4 s leaves a loaded machine
# time to start them all while the tests still run.
case $kind in test-gpu | test-cli) sleep 4 ;; *) sleep 0.2 ;; esac
ev $kind end
# go test -c: with GO_TEST_C_FAILS set it fails, as a compilation error
# would; else it writes its -o output, FILE, or DIR/PACKAGE.test for each
# package when -o names a folder (DIR/).
[[ " $* " == *" -c "* ]] || exit 0
[[ -z ${GO_TEST_C_FAILS:-} ]] || { echo "go stand-in: compilation failed" >&2; exit 1; }
binary() { printf '#!/bin/sh\n' >"$1" && chmod +x "$1"; }
out= prev=
for a; do
	if [[ $prev == -o ]]; then out=$a; fi
	prev=$a
done
if [[ $out != */ ]]; then
	binary "$out"
	exit
fi
for a; do
	if [[ $a == ./* ]]; then binary "$out$(basename "$a").test" || exit; fi
done
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
	// compute-sanitizer: appends the test binary it is given to
	// $SANITIZED, and fails unless that is one. Its three runs take 4.5 s
	// in all, as long as a test step, so that the four untimed steps
	// still overlap when a loaded machine starts them seconds apart.
	sanitizerStandIn = "#!/bin/bash\n" + eventFunc + `bin=
for a; do
	if [[ $a == *.test ]]; then bin=$a; fi
done
echo "$bin" >>"$SANITIZED"
[[ -x $bin ]] || { echo "sanitizer stand-in: no test binary $bin" >&2; exit 1; }
ev sanitize start
sleep 1.5
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

// standInHost is a tree, fresh for each test, holding a copy of the
// scripts gpu-host-run.sh runs, with stand-ins for the toolchain (in the
// bundle), make, the trainer, PyTorch, the sanitizer, nvidia-smi and
// host-overhead.sh.
type standInHost struct {
	bash string
	tree string
}

func newStandInHost(t *testing.T) standInHost {
	t.Helper()
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
	writeExecutable(t, filepath.Join(tree, "fakebin", "make"), makeStandIn)
	writeExecutable(t, filepath.Join(tree, "fakebin", "nvidia-smi"), "#!/bin/sh\necho stand-in GPU\n")
	writeExecutable(t, filepath.Join(tree, "standins", "train-cuda"), trainStandIn)
	writeExecutable(t, filepath.Join(tree, "scripts", "build-cuda.sh"), "#!/bin/bash\nexec \"$@\"\n")
	writeExecutable(t, filepath.Join(tree, "scripts", "host-overhead.sh"), hostShareStandIn)
	writeExecutable(t, filepath.Join(tree, "cuda", "bin", "compute-sanitizer"), sanitizerStandIn)
	writeFile(t, filepath.Join(tree, "scripts", "torch_mnist.py"), torchRefStandIn)
	return standInHost{bash, tree}
}

// path is name's path in the tree.
func (h standInHost) path(name ...string) string {
	return filepath.Join(append([]string{h.tree}, name...)...)
}

// run calls gpu-host-run.sh in the tree with RESULTS_DIR tree/results,
// GPU_WORK_DIR tree/work, PACK_TO tree/out, the stand-ins' events in
// tree/events.txt and the sanitizer's test binaries in tree/sanitized.txt;
// the script's other variables are empty unless env sets them.
func (h standInHost) run(env ...string) ([]byte, error) {
	cmd := exec.Command(h.bash, h.path("scripts", "gpu-host-run.sh"), h.path("results"))
	cmd.Env = append(os.Environ(), "PATH="+h.path("fakebin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"EVENTS="+h.path("events.txt"), "SANITIZED="+h.path("sanitized.txt"),
		"TRAIN_STANDIN="+h.path("standins", "train-cuda"), "PACK_TO="+h.path("out"),
		"GPU_WORK_DIR="+h.path("work"), "CUDA_HOME="+h.path("cuda"), "BUDGET_S=300",
		"RESUME=", "SKIP_TESTS=", "SKIP_TRAIN=", "SKIP_TORCH=", "GO_TEST_C_FAILS=")
	cmd.Env = append(cmd.Env, env...)
	return cmd.CombinedOutput()
}

// TestGPUHostRunTimesAloneTestsTogether runs the whole of
// scripts/gpu-host-run.sh against stand-ins (standInHost). The timed steps
// (the training runs and PyTorch's, the batch sweep, the benchmarks, the
// host's share) must each run with nothing else running; the untimed ones
// (the GPU tests, the seeds, the trainer's tests, the sanitizer) must run
// together, all four at once; every step must be in the summary as ok, and
// the speed, seeds and batches tables written. The sanitizer must run the
// test binary of the build-tests step, and the speed table must leave out
// the PyTorch run an earlier call left.
func TestGPUHostRunTimesAloneTestsTogether(t *testing.T) {
	h := newStandInHost(t)
	results, packTo, events := h.path("results"), h.path("out"), h.path("events.txt")
	// An earlier call's, whose fused capture failed where this one's works.
	writeFile(t, filepath.Join(results, "torch-graph_foreach.log"), torchRunLog)
	out, err := h.run("SEEDS=1 2", "BATCHES=32")
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
	if speed, err := os.ReadFile(filepath.Join(results, "speed.md")); err == nil && strings.Contains(string(speed), "torch-graph_foreach") {
		t.Errorf("speed.md holds the torch-graph_foreach run of an earlier call:\n%s", speed)
	}

	// One sanitizer run per tool, each on build-tests' binary, and no build
	// of the sanitize step's own (a go stand-in event of kind sanitize).
	sanitized, err := os.ReadFile(h.path("sanitized.txt"))
	if err != nil {
		t.Fatal(err)
	}
	testBin := h.path("work", "tests", "gpu.test")
	if got := strings.Fields(string(sanitized)); !slices.Equal(got, []string{testBin, testBin, testBin}) {
		t.Errorf("the sanitizer ran %q, want %s three times", got, testBin)
	}
	runs := readEvents(t, events)
	if n := len(runs["sanitize"]); n != 3 {
		t.Errorf("%d sanitize events, want the three tools' alone (the step built a test binary of its own?): %v", n, runs["sanitize"])
	}
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

// TestGPUHostRunSanitizesOnlyThisCallsBuild resumes scripts/gpu-host-run.sh,
// without training, after an earlier call whose build-tests step finished
// ok and left its test binary in GPU_WORK_DIR, and this call's test
// binaries fail to compile. build-tests must run again, as a set-up step
// (later steps need its binaries), and fail; the sanitize step must fail
// too, not run the sanitizer on the earlier binary.
func TestGPUHostRunSanitizesOnlyThisCallsBuild(t *testing.T) {
	h := newStandInHost(t)
	writeFile(t, h.path("results", "build-tests.log"), "=== build-tests: ok after 3s\n")
	writeExecutable(t, h.path("work", "tests", "gpu.test"), "#!/bin/sh\n")
	out, err := h.run("RESUME=1", "SKIP_TRAIN=1", "GO_TEST_C_FAILS=1")
	if err == nil {
		t.Errorf("gpu-host-run.sh passed with its test binaries failing to compile:\n%s", out)
	}
	summary, err := os.ReadFile(h.path("out", "summary.txt"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, step := range []string{"build-tests", "sanitize"} {
		if !regexp.MustCompile(`(?m)^` + step + ` +FAIL`).Match(summary) {
			t.Errorf("summary.txt has no FAIL line for %s:\n%s", step, summary)
		}
	}
	if sanitized, err := os.ReadFile(h.path("sanitized.txt")); err == nil {
		t.Errorf("the sanitizer ran %q, an earlier call's binary", strings.Fields(string(sanitized)))
	}
}
