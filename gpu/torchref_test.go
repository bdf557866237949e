package gpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// torchMnistStandIn loads scripts/torch_mnist.py (argv[1]) as mod, with a
// stand-in for torch: its module level needs only nn.Module.
const torchMnistStandIn = `import importlib.util, sys, types
torch, nn, F = (types.ModuleType(n) for n in ("torch", "torch.nn", "torch.nn.functional"))
nn.Module, torch.nn, nn.functional = object, nn, F
sys.modules.update({"torch": torch, "torch.nn": nn, "torch.nn.functional": F})
spec = importlib.util.spec_from_file_location("torch_mnist", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
`

// blasKindProbe prints blas_kind of each path given.
const blasKindProbe = torchMnistStandIn + `for path in sys.argv[2:]:
    print(mod.blas_kind(path))
`

// adamKindProbe prints adam_kind of each CHOICE/MODE/DEVICE given.
const adamKindProbe = torchMnistStandIn + `for arg in sys.argv[2:]:
    choice, mode, device = arg.split("/")
    print(mod.adam_kind(choice, mode, types.SimpleNamespace(type=device)))
`

// warmUpProbe runs warm_up_compiled with the number of steps given and
// prints what it did, one word an event: "none" for zero_grad with
// set_to_none, "zero" for zero_grad in place, "forward" and "backward".
const warmUpProbe = torchMnistStandIn + `events = []
class Opt:
    def zero_grad(self, set_to_none=True):
        events.append("none" if set_to_none else "zero")
class Loss:
    def backward(self):
        events.append("backward")
def model(x):
    events.append("forward")
    return x
F.cross_entropy = lambda logits, y: Loss()
mod.warm_up_compiled(model, Opt(), "xb", "yb", int(sys.argv[2]))
print(" ".join(events))
`

// TestTorchReferenceWarmsUpWithoutAccumulating checks the warm-up of
// scripts/torch_mnist.py --mode compile: under torch.compile's
// "reduce-overhead" mode (CUDA graph trees) a backward's gradients are
// graph output memory that the next replay overwrites, and accumulating
// into them fails the run. So every backward must start from gradients set
// to None, and the warm-up must leave them None; and each step is one
// forward and one backward.
func TestTorchReferenceWarmsUpWithoutAccumulating(t *testing.T) {
	python := lookPathOrSkip(t, "python3")
	script := filepath.Join(repoRoot(t), "scripts", "torch_mnist.py")
	for _, steps := range []int{1, 3} {
		out, err := exec.Command(python, "-c", warmUpProbe, script, strconv.Itoa(steps)).CombinedOutput()
		if err != nil {
			t.Fatalf("warm_up_compiled probe: %v\n%s", err, out)
		}
		events := strings.Fields(string(out))
		cleared, forwards, backwards := false, 0, 0
		for _, e := range events {
			switch e {
			case "none":
				cleared = true
			case "zero":
				cleared = false // in place: the next backward adds to the old buffers
			case "forward":
				forwards++
			case "backward":
				if !cleared {
					t.Errorf("%d steps: backward %d starts from gradients not set to None (events %v)", steps, backwards+1, events)
				}
				backwards++
				cleared = false
			}
		}
		if forwards != steps || backwards != steps {
			t.Errorf("%d steps: %d forwards and %d backwards (events %v)", steps, forwards, backwards, events)
		}
		if !cleared {
			t.Errorf("%d steps: the warm-up leaves gradients behind (events %v)", steps, events)
		}
	}
}

// probeCase is a question to a stand-in probe and the answer it must print.
type probeCase struct{ in, want string }

// checkProbe runs a stand-in probe over every case's question at once and
// checks its answers, one a line, against fn's expected ones.
func checkProbe(t *testing.T, python, probe, fn string, cases []probeCase) {
	t.Helper()
	args := []string{"-c", probe, filepath.Join(repoRoot(t), "scripts", "torch_mnist.py")}
	for _, c := range cases {
		args = append(args, c.in)
	}
	out, err := exec.Command(python, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s probe: %v\n%s", fn, err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != len(cases) {
		t.Fatalf("%s probe printed %d answers for %d questions:\n%s", fn, len(got), len(cases), out)
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%s(%s) = %s, want %s", fn, c.in, got[i], c.want)
		}
	}
}

// TestTorchReferenceChoosesAdam checks which Adam update
// scripts/torch_mnist.py's --adam auto picks: fused (one kernel for every
// parameter) where PyTorch is meant at its fastest, graph and compile on
// CUDA, so that our engines are compared with the best PyTorch can do, and
// torch's own default for eager, PyTorch as most code runs it.
func TestTorchReferenceChoosesAdam(t *testing.T) {
	python := lookPathOrSkip(t, "python3")
	checkProbe(t, python, adamKindProbe, "adam_kind", []probeCase{
		{"auto/graph/cuda", "fused"},
		{"auto/compile/cuda", "fused"},
		{"auto/eager/cuda", "default"},
		{"auto/compile/cpu", "default"},
		{"auto/eager/cpu", "default"},
		{"default/graph/cuda", "default"},
		{"fused/eager/cuda", "fused"},
	})
}

// TestTorchReferenceNamesItsBLAS checks how scripts/torch_mnist.py tells
// which CPU BLAS PyTorch runs on. make bench (scripts/bench.sh) installs
// OpenBLAS when it says "reference": Debian's python3-torch on the netlib
// reference BLAS trains about 5x slower, which would flatter our ratio.
func TestTorchReferenceNamesItsBLAS(t *testing.T) {
	python := lookPathOrSkip(t, "python3")
	script := filepath.Join(repoRoot(t), "scripts", "torch_mnist.py")
	checkProbe(t, python, blasKindProbe, "blas_kind", []probeCase{
		{"/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0", "reference"},
		{"/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", "openblas"},
		{"/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0", "openblas"},
		{"/opt/intel/oneapi/mkl/lib/libmkl_rt.so.2", "mkl"},
		{"/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3", "blis"},
		{"/usr/lib/x86_64-linux-gnu/atlas/libblas.so.3", "atlas"},
		{"/usr/local/lib/libblas.so.3", "other"},
		{"/usr/local/cuda/lib64/libcublas.so.12", "None"},
		{"/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "None"},
	})

	// With a real PyTorch (Debian's, as make bench uses it), --which-blas
	// names a kind from the list and, unless torch brings its own, a
	// library that is there.
	const debianPython = "/usr/bin/python3"
	if exec.Command(debianPython, "-c", "import torch").Run() != nil {
		t.Skipf("no PyTorch for %s: only blas_kind checked", debianPython)
	}
	out, err := exec.Command(debianPython, script, "--which-blas").CombinedOutput()
	if err != nil {
		t.Fatalf("torch_mnist.py --which-blas: %v\n%s", err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		t.Fatalf("torch_mnist.py --which-blas printed %q, want KIND PATH", out)
	}
	switch kind, path := fields[0], fields[1]; kind {
	case "built-in", "unknown":
		// torch's own BLAS (a pip wheel) or no /proc: no library to name.
	case "openblas", "mkl", "blis", "atlas", "reference", "other":
		if _, err := os.Stat(path); err != nil {
			t.Errorf("--which-blas names %s, which is not there: %v", path, err)
		}
	default:
		t.Errorf("--which-blas printed the unknown kind %q", kind)
	}
}
