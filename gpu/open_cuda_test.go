//go:build cuda

package gpu

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/model"
)

// gpuPresent tells from the machine, not from CUDA, whether it has an NVIDIA
// GPU: the device node the driver creates, or a GPU listed by nvidia-smi
// (or nullcuda, which stands in for one: nullcuda_cuda_test.go).
// The tests then demand that Open succeeds or fails cleanly accordingly.
func gpuPresent() bool {
	if _, err := os.Stat("/dev/nvidia0"); err == nil || onNullcuda() {
		return true
	}
	out, err := exec.Command("nvidia-smi", "-L").Output()
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "GPU ")
}

func TestOpen(t *testing.T) {
	for _, engine := range EngineNames() {
		t.Run(engine, func(t *testing.T) { testOpen(t, engine) })
	}
}

func testOpen(t *testing.T, engine string) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	dev, err := Open(0, engine, log)

	if !gpuPresent() {
		// The no-GPU path: a clean, one-line error that points at the CPU build.
		if err == nil {
			dev.Close()
			t.Fatalf("Open succeeded (%s) on a machine without an NVIDIA GPU", dev.Name())
		}
		if !errors.Is(err, ErrNoUsableGPU) {
			t.Errorf("error %q does not wrap ErrNoUsableGPU", err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "no usable CUDA GPU") || !strings.HasSuffix(msg, "make train") {
			t.Errorf("want one line from %q to the CPU hint, got %q", ErrNoUsableGPU, msg)
		}
		t.Logf("no GPU here; Open says: %v", err)
		return
	}

	if err != nil {
		t.Fatalf("this machine has an NVIDIA GPU but Open failed: %v", err)
	}
	defer dev.Close()
	if !dev.CUDA() || !strings.HasPrefix(dev.Name(), "cuda:0 ") || !strings.HasSuffix(dev.Name(), "("+engine+")") {
		t.Errorf("got device %q (CUDA %v), want cuda:0 ... (%s)", dev.Name(), dev.CUDA(), engine)
	}
	var info *logrus.Entry
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.InfoLevel && e.Message == "using CUDA GPU" {
			info = e
		}
	}
	if info == nil {
		t.Fatalf("Open did not log the device at Info level; logged %v", hook.AllEntries())
	}
	for _, k := range []string{"name", "compute_capability", "memory_total_mib", "memory_free_mib", "driver_cuda", "built_with_cuda", "engine"} {
		if _, ok := info.Data[k]; !ok {
			t.Errorf("device log lacks %q: %v", k, info.Data)
		}
	}
	if info.Data["engine"] != engine {
		t.Errorf("device log names engine %v, want %s", info.Data["engine"], engine)
	}
	t.Logf("opened %s: %v", dev.Name(), info.Data)
}

// TestOpenNewEngine: the device makes the engine Open was given.
func TestOpenNewEngine(t *testing.T) {
	requireNativeGPU(t)
	log, _ := logtest.NewNullLogger()
	for _, c := range []struct {
		engine string
		isWant func(model.Engine) bool
	}{
		{EngineNative, func(e model.Engine) bool { _, ok := e.(*nativeEngine); return ok }},
		{EngineGorgonia, func(e model.Engine) bool { _, ok := e.(*graphEngine); return ok }},
	} {
		dev, err := Open(0, c.engine, log)
		if err != nil {
			t.Fatalf("Open %s: %v", c.engine, err)
		}
		e, err := dev.NewEngine(nativeTestConfig(8))
		if err != nil {
			t.Fatalf("NewEngine %s: %v", c.engine, err)
		}
		if !c.isWant(e) {
			t.Errorf("Open(0, %q) made a %T", c.engine, e)
		}
		if c.engine == EngineNative { // Gorgonia's machines stay open: see newTestGraph
			if err := e.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if err := dev.Close(); err != nil {
			t.Errorf("device Close: %v", err)
		}
	}
}

// TestGraphOnGPU runs a small MatMul+Add graph on Gorgonia's CUDA tape
// machine and checks the numbers: cuBLAS (MatMul), the registered PTX
// (elembinop.add_vv_f32) and the device↔host copies all take part.
func TestGraphOnGPU(t *testing.T) {
	if !gpuPresent() {
		t.Skip("no NVIDIA GPU on this machine; TestOpen covers the no-GPU error")
	}
	if onNullcuda() {
		t.Skip("nullcuda runs our kernels only, not Gorgonia's own (elembinop)")
	}
	log, _ := logtest.NewNullLogger()
	dev, err := Open(0, EngineGorgonia, log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer dev.Close()

	g := G.NewGraph()
	xv := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	wv := tensor.New(tensor.WithShape(3, 2), tensor.WithBacking([]float32{1, 0, 0, 1, 1, 1}))
	bv := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{0.5, -0.5, 1, -1}))
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("x"), G.WithValue(xv))
	w := G.NewMatrix(g, tensor.Float32, G.WithShape(3, 2), G.WithName("w"), G.WithValue(wv))
	b := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 2), G.WithName("b"), G.WithValue(bv))
	xw, err := G.Mul(x, w)
	if err != nil {
		t.Fatal(err)
	}
	y, err := G.Add(xw, b)
	if err != nil {
		t.Fatal(err)
	}
	var out G.Value
	G.Read(y, &out)

	// Never closed: see newTestGraph.
	var m G.VM
	onOneThread(func() { m = G.NewTapeMachine(g) })
	if err := waitForEngines(m); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatalf("running the graph on the GPU: %v", err)
	}
	got, ok := out.Data().([]float32)
	if !ok {
		t.Fatalf("result is %T, want []float32", out.Data())
	}
	// x·w = [[1+3, 2+3], [4+6, 5+6]] = [[4, 5], [10, 11]]; + b.
	want := []float32{4.5, 4.5, 11, 10}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("x·w+b = %v, want %v", got, want)
		}
	}
}

func TestOpenRejectsNegativeOrdinal(t *testing.T) {
	log, _ := logtest.NewNullLogger()
	if dev, err := Open(-1, EngineGorgonia, log); err == nil {
		dev.Close()
		t.Fatal("Open(-1) succeeded")
	}
}

// TestOpenRejectsUnknownEngine: the engine name is checked before CUDA is
// touched, so this needs no GPU.
func TestOpenRejectsUnknownEngine(t *testing.T) {
	log, _ := logtest.NewNullLogger()
	for _, name := range []string{"", "cuda", "Native"} {
		dev, err := Open(0, name, log)
		if err == nil {
			dev.Close()
			t.Errorf("Open with engine %q succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), "unknown engine") || errors.Is(err, ErrNoUsableGPU) {
			t.Errorf("engine %q: error %q does not say the engine is unknown", name, err)
		}
	}
}

func TestNarrowVisibleDevices(t *testing.T) {
	for _, tc := range []struct {
		ordinal int
		current string
		isSet   bool
		want    string
		wantErr bool
	}{
		{ordinal: 1, want: "1"},
		{ordinal: 3, want: "3"},
		{ordinal: 1, current: "2,3", isSet: true, want: "3"},
		{ordinal: 0, current: "GPU-abc, GPU-def", isSet: true, want: "GPU-abc"},
		{ordinal: 1, current: "GPU-abc, GPU-def", isSet: true, want: "GPU-def"},
		{ordinal: 2, current: "2,3", isSet: true, wantErr: true},
		{ordinal: 1, current: "", isSet: true, wantErr: true},
	} {
		got, err := narrowVisibleDevices(tc.ordinal, tc.current, tc.isSet)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("narrowVisibleDevices(%d, %q, %v) = %q, %v; want %q, error %v",
				tc.ordinal, tc.current, tc.isSet, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCUDAVersionString(t *testing.T) {
	for v, want := range map[int]string{11080: "11.8", 12040: "12.4", 13000: "13.0", -1: "unknown"} {
		if got := cudaVersionString(v); got != want {
			t.Errorf("cudaVersionString(%d) = %q, want %q", v, got, want)
		}
	}
}
