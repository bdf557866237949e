//go:build cuda

package gpu

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/cu"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model"
	"mnist/model/modeltest"
	"mnist/model/reference"
)

// requireGPUEnv turns "no usable GPU" from a skip into a failure, for runs
// on a machine that is known to have one.
const requireGPUEnv = "MNIST_REQUIRE_GPU"

// requireNativeGPU skips the test when this machine has no usable GPU, or
// fails it if MNIST_REQUIRE_GPU=1.
func requireNativeGPU(t testing.TB) {
	t.Helper()
	unusable := func(why string) {
		t.Helper()
		if os.Getenv(requireGPUEnv) == "1" {
			t.Fatalf("%s=1 but there is no usable GPU: %s", requireGPUEnv, why)
		}
		t.Skipf("no usable GPU (%s); set %s=1 to make this a failure", why, requireGPUEnv)
	}
	devNode := "/dev/nvidia0 exists"
	if _, err := os.Stat("/dev/nvidia0"); err != nil {
		devNode = "no /dev/nvidia0"
	}
	if err := cu.Init(); err != nil {
		unusable("cuInit: " + cu.ErrorString(err) + "; " + devNode)
	}
	if n, err := cu.NumDevices(); err != nil || n == 0 {
		unusable("the driver lists no devices; " + devNode)
	}
}

func nativeTestConfig(batch int) model.Config {
	cfg := model.DefaultConfig()
	cfg.BatchSize = batch
	cfg.Seed = 9
	return cfg
}

// newTestNative opens the native engine on device 0, closed when the test
// ends.
func newTestNative(t testing.TB, cfg model.Config) model.Engine {
	t.Helper()
	return newTestEngine(t, openNative, cfg)
}

// opener makes one of the cuda build's engines.
type opener func(model.Config) (model.Engine, error)

func openNative(cfg model.Config) (model.Engine, error) { return newNativeEngine(0, cfg) }

// testEngines are the cuda build's engines by name, for the tests that
// every engine must pass.
func testEngines() map[string]opener {
	return map[string]opener{
		EngineNative:    openNative,
		EngineGorgonia:  newGorgoniaEngine,
		EngineCUDAGraph: func(cfg model.Config) (model.Engine, error) { return newCapturedEngine(0, cfg, EngineCUDAGraph) },
		EngineFused:     func(cfg model.Config) (model.Engine, error) { return newCapturedEngine(0, cfg, EngineFused) },
		EnginePersistent: func(cfg model.Config) (model.Engine, error) {
			return newPersistentEngine(0, cfg)
		},
	}
}

// eachEngine runs test once per engine, as a subtest named for it.
func eachEngine(t *testing.T, test func(t *testing.T, open opener)) {
	for _, name := range EngineNames() {
		t.Run(name, func(t *testing.T) { test(t, testEngines()[name]) })
	}
}

// newTestEngine opens an engine, closed when the test ends.
func newTestEngine(t testing.TB, open opener, cfg model.Config) model.Engine {
	t.Helper()
	e, err := open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// load hands e set under id.
func load(t testing.TB, e model.Engine, id model.DataID, set *data.Set) {
	t.Helper()
	if err := e.Load(id, set); err != nil {
		t.Fatalf("Load %v: %v", id, err)
	}
}

// state returns e's State.
func state(t testing.TB, e model.Engine) model.State {
	t.Helper()
	s, err := e.State()
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	if s.Params == nil || s.Optimizer == nil {
		t.Fatalf("State returned %+v", s)
	}
	return s
}

// randomSet is n images of random pixels with random labels.
func randomSet(n int, seed uint64) *data.Set {
	rng := rand.New(rand.NewPCG(seed, 2))
	s := &data.Set{Images: make([]byte, n*data.ImageSize), Labels: make([]byte, n)}
	for i := range s.Images {
		s.Images[i] = byte(rng.IntN(256))
	}
	for i := range s.Labels {
		s.Labels[i] = byte(rng.IntN(data.NumClasses))
	}
	return s
}

// Shared with model's tests.
var (
	learnableSet   = modeltest.LearnableSet
	referenceBatch = modeltest.ReferenceBatch
	maxRelErr      = modeltest.MaxRelErr
)

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

// referenceHits counts the rows whose first largest log-probability is the
// label, like model.ScoreLogProbs.
func referenceHits(lp []float64, labels []int) int {
	hits, _ := model.ScoreLogProbs(lp, &data.Set{Labels: toBytes(labels)}, identity(len(labels)))
	return hits
}

func toBytes(v []int) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

func identity(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

const nativeTol = 1e-4

// TestEngineRejectsFloat64 needs no GPU: the dtype is checked first.
func TestEngineRejectsFloat64(t *testing.T) {
	eachEngine(t, func(t *testing.T, open opener) {
		cfg := nativeTestConfig(8)
		cfg.Dtype = tensor.Float64
		e, err := open(cfg)
		if err == nil {
			e.Close()
			t.Fatal("float64 accepted")
		}
		if !strings.Contains(err.Error(), "float32") {
			t.Errorf("error %q does not say float32 is needed", err)
		}
	})
}

// TestEngineFailsCleanlyWithoutGPU: on a machine without a usable GPU the
// constructors return an error (no panic, nothing left open).
func TestEngineFailsCleanlyWithoutGPU(t *testing.T) {
	if err := cu.Init(); err == nil {
		if n, err := cu.NumDevices(); err == nil && n > 0 {
			t.Skip("this machine has a GPU")
		}
	}
	prefixes := map[string]string{EngineNative: "native cuda: ", EngineGorgonia: "gorgonia cuda: ", EngineCUDAGraph: "cudagraph: ", EngineFused: "fused: ", EnginePersistent: "persistent: "}
	for _, name := range EngineNames() {
		e, err := testEngines()[name](nativeTestConfig(8))
		if err == nil {
			e.Close()
			t.Fatalf("the %s engine started without a usable GPU", name)
		}
		if !strings.HasPrefix(err.Error(), prefixes[name]) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q is not one line saying where it came from", name, err)
		}
		t.Logf("%s without a GPU: %v", name, err)
	}
}

// TestNativeForwardBackwardMatchesReference compares one forward and
// backward pass on a partial batch (7 rows, batch size 8, a repeated image)
// with the float64 reference on the same initial weights: the
// log-probabilities of Forward, the loss and hits of Step, and the gradients
// (read from Adam's first moment, see probeAt).
func TestNativeForwardBackwardMatchesReference(t *testing.T) {
	requireNativeGPU(t)
	cfg := probeConfig(nativeTestConfig(8))
	e := newTestNative(t, cfg)
	initial, err := model.NewParams(tensor.Float32, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	set := randomSet(8, 3)
	idx := []int{5, 0, 7, 2, 2, 3, 6}
	x, labels := referenceBatch(set, idx)
	load(t, e, model.TrainSet, set)

	// The engine starts at model.NewParams, and Forward changes nothing.
	assertParamsEqual(t, state(t, e).Params, initial)
	lp := make([]float64, len(idx)*model.Classes)
	if err := e.Forward(model.TrainSet, idx, lp); err != nil {
		t.Fatal(err)
	}
	assertParamsEqual(t, state(t, e).Params, initial)

	got := probeAt(t, e, initial, idx)
	want := reference.ForwardBackward(reference.Params(initial.Float64s()), x, labels)
	if e := math.Abs(got.Loss-want.Loss) / want.Loss; !(e <= nativeTol) {
		t.Errorf("loss %v, reference %v (rel err %.2g)", got.Loss, want.Loss, e)
	}
	if wantHits := referenceHits(want.LogProbs, labels); got.Hits != wantHits {
		t.Errorf("%d hits, reference %d", got.Hits, wantHits)
	}
	if e := maxRelErr(got.LogProbs, want.LogProbs, 1); !(e <= nativeTol) {
		t.Errorf("log-probabilities differ, rel err %.2g", e)
	}
	for i := range lp {
		if lp[i] != got.LogProbs[i] {
			t.Fatalf("log-probability %d: %v from the first Forward, %v from the second on the same weights", i, lp[i], got.LogProbs[i])
		}
	}
	for i := range want.Grads {
		// Relative to the tensor's largest gradient: tiny entries are all
		// rounding.
		if e := maxRelErr(got.Grads[i], want.Grads[i], maxAbs(want.Grads[i])); !(e <= nativeTol) {
			t.Errorf("%s gradient differs, rel err %.2g", model.ParamNames()[i], e)
		}
		if maxAbs(want.Grads[i]) == 0 {
			t.Errorf("%s: reference gradient is all zero; the test data checks nothing", model.ParamNames()[i])
		}
	}
}

// TestNativeStepsMatchReferenceAdam: each Step reports the batch's loss and
// hits from before its update, exactly what scoring Forward's
// log-probabilities on the same weights gives (the engine's two ways of
// getting them agree); after two Steps (a partial batch, then a full one)
// the parameters match two updates of reference.Adam fed the GPU's own
// gradients, which checks the Adam kernel alone.
//
// On the learnable images they must also match the all-float64 reference,
// like the CPU engine's test. Not on the random images: a weight whose
// first gradient is tiny (|g| ≈ 1e-6, where Adam's sqrt(v) ≈ ε) has its
// update scaled by up to 1/ε, so float32 rounding of that gradient (5e-9 on
// an H100, 1e-7 of the tensor's largest) moves the weight by 1e-6, just over
// the tolerance; the gradients themselves are checked by
// TestNativeForwardBackwardMatchesReference.
func TestNativeStepsMatchReferenceAdam(t *testing.T) {
	requireNativeGPU(t)
	for _, c := range []struct {
		name     string
		set      *data.Set
		endToEnd bool
	}{{"learnable", learnableSet(8, 4), true}, {"random", randomSet(8, 4), false}} {
		t.Run(c.name, func(t *testing.T) { testStepsMatchReferenceAdam(t, c.set, c.endToEnd) })
	}
}

// twoSteps are the batches of the two-step parity tests: a partial batch of
// 7 (batch size 8), then a full one.
func twoSteps() [][]int { return [][]int{{1, 3, 5, 7, 0, 2, 4}, {7, 6, 5, 4, 3, 2, 1, 0}} }

func testStepsMatchReferenceAdam(t *testing.T, set *data.Set, endToEnd bool) {
	cfg := nativeTestConfig(8)
	e := newTestNative(t, cfg)
	prober := newTestNative(t, probeConfig(cfg))
	load(t, e, model.TrainSet, set)
	load(t, prober, model.TrainSet, set)
	initial, err := model.NewParams(tensor.Float32, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	assertParamsEqual(t, state(t, e).Params, initial)

	opt := cfg.Optimizer
	newAdam := func() *reference.Adam {
		return reference.NewAdam(opt.LearningRate, opt.Beta1, opt.Beta2, opt.Epsilon)
	}
	w, optW := reference.Params(initial.Float64s()), newAdam()     // all float64
	own, optOwn := reference.Params(initial.Float64s()), newAdam() // fed the GPU's gradients
	var refGrads, gpuGrads []reference.Params
	for step, idx := range twoSteps() {
		x, labels := referenceBatch(set, idx)
		pass := reference.ForwardBackward(w, x, labels)
		p := probeAt(t, prober, state(t, e).Params, idx)
		res, err := e.Step(idx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Loss != p.Loss || res.Hits != p.Hits {
			t.Errorf("step %d: Step reports %+v, another engine on the same weights %v and %d hits", step+1, res, p.Loss, p.Hits)
		}
		hits, lossSum := model.ScoreLogProbs(p.LogProbs, set, idx)
		if res.Hits != hits || res.Loss != lossSum/float64(len(idx)) {
			t.Errorf("step %d: Step reports %+v; scoring Forward's log-probabilities gives loss %v, %d hits",
				step+1, res, lossSum/float64(len(idx)), hits)
		}
		if e := math.Abs(res.Loss-pass.Loss) / pass.Loss; !(e <= nativeTol) {
			t.Errorf("step %d: loss %v, reference %v (rel err %.2g)", step+1, res.Loss, pass.Loss, e)
		}
		if wantHits := referenceHits(pass.LogProbs, labels); res.Hits != wantHits {
			t.Errorf("step %d: %d hits, reference %d", step+1, res.Hits, wantHits)
		}
		optW.Update(w, pass.Grads)
		optOwn.Update(own, p.Grads)
		refGrads = append(refGrads, pass.Grads)
		gpuGrads = append(gpuGrads, p.Grads)
	}
	after := state(t, e)
	if after.Optimizer.Name != "adam" || after.Optimizer.Step != 2 {
		t.Errorf("after two steps the optimizer state is %s at step %d, want adam at 2", after.Optimizer.Name, after.Optimizer.Step)
	}
	got := after.Params.Float64s()
	for i := range w {
		if !after.Params.Tensors[i].Shape().Eq(initial.Tensors[i].Shape()) {
			t.Errorf("%s has shape %v, want %v", model.ParamNames()[i], after.Params.Tensors[i].Shape(), initial.Tensors[i].Shape())
		}
		for _, c := range []struct {
			what  string
			want  reference.Params
			check bool
		}{{"fed the GPU's gradients", own, true}, {"all float64", w, endToEnd}} {
			e := maxRelErr(got[i], c.want[i], 1e-2)
			t.Logf("%s after 2 Adam steps, reference %s: max rel err %.2g", model.ParamNames()[i], c.what, e)
			if c.check && !(e <= nativeTol) {
				j := worstIndex(got[i], c.want[i], 1e-2)
				t.Errorf("%s after 2 Adam steps differs from the reference %s, rel err %.2g; worst [%d]: initial %.9g, GPU %.9g, reference %.9g; "+
					"gradients (reference, GPU): step 1 %.4g, %.4g, step 2 %.4g, %.4g; largest step-1 gradient %.4g",
					model.ParamNames()[i], c.what, e, j, initial.Float64s()[i][j], got[i][j], c.want[i][j],
					refGrads[0][i][j], gpuGrads[0][i][j], refGrads[1][i][j], gpuGrads[1][i][j], maxAbs(refGrads[0][i]))
			}
		}
	}
}

// worstIndex is where maxRelErr finds its maximum.
func worstIndex(got, want []float64, floor float64) int {
	worst, at := -1.0, 0
	for i := range want {
		if d := math.Abs(got[i]-want[i]) / math.Max(math.Abs(want[i]), floor); d > worst {
			worst, at = d, i
		}
	}
	return at
}

// assertParamsEqual fails unless got and want are float32 tensors of the
// same shapes with the same bits.
func assertParamsEqual(t *testing.T, got, want *model.Params) {
	t.Helper()
	for i := range want.Tensors {
		g, ok1 := got.Tensors[i].Data().([]float32)
		w, ok2 := want.Tensors[i].Data().([]float32)
		if !ok1 || !ok2 || !got.Tensors[i].Shape().Eq(want.Tensors[i].Shape()) || len(g) != len(w) {
			t.Fatalf("%s: %v %v, want %v %v", model.ParamNames()[i],
				got.Tensors[i].Dtype(), got.Tensors[i].Shape(), want.Tensors[i].Dtype(), want.Tensors[i].Shape())
		}
		for j := range w {
			if math.Float32bits(g[j]) != math.Float32bits(w[j]) {
				t.Fatalf("%s[%d] = %v, want %v", model.ParamNames()[i], j, g[j], w[j])
			}
		}
	}
}

// assertOptimizerEqual fails unless got and want are the same optimizer at
// the same step with the same bits in every slot.
func assertOptimizerEqual(t *testing.T, got, want *model.OptimizerState) {
	t.Helper()
	if got.Name != want.Name || got.Step != want.Step || len(got.Slots) != len(want.Slots) {
		t.Fatalf("optimizer state %s at step %d with %d slots, want %s at %d with %d",
			got.Name, got.Step, len(got.Slots), want.Name, want.Step, len(want.Slots))
	}
	for s := range want.Slots {
		for i := range want.Slots[s] {
			g, w := got.Slots[s][i], want.Slots[s][i]
			if len(g) != len(w) {
				t.Fatalf("slot %d of %s: %d values, want %d", s, model.ParamNames()[i], len(g), len(w))
			}
			for j := range w {
				if math.Float64bits(g[j]) != math.Float64bits(w[j]) {
					t.Fatalf("slot %d of %s[%d] = %v, want %v", s, model.ParamNames()[i], j, g[j], w[j])
				}
			}
		}
	}
}

// TestEngineLearnsSyntheticDigits trains 2 epochs through model's Trainer
// (shuffled batches of 32, the last one partial) and expects a held-out set
// to be learnt. Evaluate (the set loaded as the TestSet) must agree exactly
// with scoring Predict's log-probabilities (the set loaded as Images).
func TestEngineLearnsSyntheticDigits(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testLearnsSyntheticDigits)
}

func testLearnsSyntheticDigits(t *testing.T, open opener) {
	ctx := context.Background()
	cfg := nativeTestConfig(32)
	cfg.Epochs = 2
	e := newTestEngine(t, open, cfg)
	history := fitEngine(t, cfg, e, learnableSet(2000, 1))
	if len(history) != 2 || !(history[1].Loss < history[0].Loss) {
		t.Errorf("training loss did not fall over 2 epochs: %+v", history)
	}
	test := learnableSet(500, 2)
	m, err := model.Evaluate(ctx, e, test, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out: accuracy %.4f, loss %.4f", m.Accuracy, m.Loss)
	if m.Images != 500 {
		t.Errorf("evaluated %d images, want 500", m.Images)
	}
	if m.Accuracy < 0.95 {
		t.Errorf("held-out accuracy %.4f after 2 epochs, want >= 0.95", m.Accuracy)
	}

	lp, err := model.Predict(ctx, e, test, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(lp) != 500*model.Classes {
		t.Fatalf("Predict returned %d log-probabilities, want %d", len(lp), 500*model.Classes)
	}
	var hits int
	var loss float64
	for lo := 0; lo < test.Len(); lo += cfg.BatchSize {
		idx := identity(min(cfg.BatchSize, test.Len()-lo))
		for r := range idx {
			idx[r] += lo
		}
		h, l := model.ScoreLogProbs(lp[lo*model.Classes:(lo+len(idx))*model.Classes], test, idx)
		hits += h
		loss += l
	}
	if want := float64(hits) / 500; m.Accuracy != want || m.Loss != loss/500 {
		t.Errorf("Evaluate gave accuracy %v loss %v; scoring Predict's log-probabilities gives %v and %v",
			m.Accuracy, m.Loss, want, loss/500)
	}
	if m.Confusion.Total() != 500 || m.Confusion.Correct() != hits {
		t.Errorf("confusion matrix counts %d images, %d right; want 500 and %d", m.Confusion.Total(), m.Confusion.Correct(), hits)
	}
}

// steps runs the given number of training steps of size up to cfg's batch
// on e's TrainSet (n images), partial batches among them, starting at step
// first, and returns what each reported.
func steps(t testing.TB, e model.Engine, n, batch, first, count int) []model.StepResult {
	t.Helper()
	var results []model.StepResult
	for step := first; step < first+count; step++ {
		lo := (step * batch) % n
		idx := identity(batch - step%3) // partial batches too
		for r := range idx {
			idx[r] = (idx[r] + lo) % n
		}
		res, err := e.Step(idx)
		if err != nil {
			t.Fatalf("step %d: %v", step+1, err)
		}
		results = append(results, res)
	}
	return results
}

// TestEngineDeterministic: two engines with one seed, fed the same batches,
// end with bit-identical parameters and optimizer state and report
// identical steps, with either optimizer.
func TestEngineDeterministic(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testDeterministic)
}

func testDeterministic(t *testing.T, open opener) {
	set := learnableSet(256, 5)
	for _, name := range model.OptimizerNames() {
		t.Run(name, func(t *testing.T) {
			cfg := nativeTestConfig(32)
			cfg.Optimizer.Name = name
			run := func() (model.State, []model.StepResult) {
				e := newTestEngine(t, open, cfg)
				load(t, e, model.TrainSet, set)
				results := steps(t, e, set.Len(), 32, 0, 10)
				return state(t, e), results
			}
			s1, r1 := run()
			s2, r2 := run()
			assertParamsEqual(t, s2.Params, s1.Params)
			assertOptimizerEqual(t, s2.Optimizer, s1.Optimizer)
			for i := range r1 {
				if r1[i] != r2[i] {
					t.Errorf("step %d: %+v, then %+v", i+1, r1[i], r2[i])
				}
			}
		})
	}
}

// TestEngineCloseWhileStepping: Close from one goroutine while another
// goroutine's StepAt calls go on is serialised like any other two calls:
// the steps after it fail with "closed", and the race detector finds
// nothing (the engine decides how to run a step under its lock).
func TestEngineCloseWhileStepping(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testCloseWhileStepping)
}

func testCloseWhileStepping(t *testing.T, open opener) {
	cfg := nativeTestConfig(4)
	e, err := open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	load(t, e, model.TrainSet, randomSet(8, 3))
	dl := e.(model.DeviceLoop)
	if err := dl.SetOrder(identity(8)); err != nil {
		t.Fatal(err)
	}
	stepped := make(chan struct{})
	done := make(chan error, 1) // a step failing early must not block the goroutine
	go func() {
		for i := 0; ; i++ {
			lo := 4 * (i % 2)
			if err := dl.StepAt(lo, lo+4); err != nil {
				done <- err
				return
			}
			if i == 2 {
				close(stepped)
			}
		}
	}()
	select {
	case <-stepped:
	case err := <-done:
		t.Fatalf("StepAt failed before Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !strings.Contains(err.Error(), "closed") {
		t.Errorf("StepAt after Close: %v, want the engine closed", err)
	}
}

// TestEngineAcrossThreads: an engine may be called from any goroutine.
// Each call here runs on a goroutine that stays locked to its OS thread until
// it exits, which ends that thread, so every call meets a fresh thread with
// no CUDA context current; the results must equal those of one goroutine.
func TestEngineAcrossThreads(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testAcrossThreads)
}

func testAcrossThreads(t *testing.T, open opener) {
	cfg := nativeTestConfig(16)
	set := learnableSet(64, 6)
	batches := [][]int{identity(16), identity(9), identity(16)}
	onThread := func(fn func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			fn()
		}()
		<-done
	}
	var hopped model.Engine
	var err error
	onThread(func() { hopped, err = open(cfg) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		onThread(func() { err = hopped.Close() })
		if err != nil {
			t.Errorf("Close on another thread: %v", err)
		}
	}()
	onThread(func() { err = hopped.Load(model.TrainSet, set) })
	if err != nil {
		t.Fatalf("Load on another thread: %v", err)
	}
	here := newTestEngine(t, open, cfg)
	load(t, here, model.TrainSet, set)
	for i, idx := range batches {
		var got model.StepResult
		onThread(func() { got, err = hopped.Step(idx) })
		if err != nil {
			t.Fatalf("step %d on another thread: %v", i+1, err)
		}
		want, err := here.Step(idx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("step %d: %+v on fresh threads, %+v on one", i+1, got, want)
		}
	}
	var finite bool
	onThread(func() { finite, err = hopped.Finite() })
	if err != nil || !finite {
		t.Errorf("Finite on another thread: %v, %v; want true", finite, err)
	}
	var s1 model.State
	onThread(func() { s1, err = hopped.State() })
	if err != nil {
		t.Fatal(err)
	}
	s2 := state(t, here)
	assertParamsEqual(t, s1.Params, s2.Params)
	assertOptimizerEqual(t, s1.Optimizer, s2.Optimizer)
}

// TestEngineInputErrors: bad sets, batches, buffers and states are refused
// without harming the engine, and Close is idempotent and final.
func TestEngineInputErrors(t *testing.T) {
	requireNativeGPU(t)
	eachEngine(t, testInputErrors)
}

func testInputErrors(t *testing.T, open opener) {
	cfg := nativeTestConfig(4)
	e, err := open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set := randomSet(6, 1)
	if _, err := e.Step([]int{0}); err == nil || !strings.Contains(err.Error(), "never loaded") {
		t.Errorf("Step before Load: %v", err)
	}
	if dl, ok := e.(model.DeviceLoop); ok {
		if err := dl.StepAt(0, 4); err == nil || !strings.Contains(err.Error(), "before Load") {
			t.Errorf("StepAt before Load: %v", err)
		}
	}
	for name, bad := range map[string]*data.Set{
		"empty":    {},
		"label 10": {Images: make([]byte, 2*data.ImageSize), Labels: []byte{3, 10}},
		"short":    {Images: make([]byte, data.ImageSize), Labels: []byte{3, 4}},
	} {
		if err := e.Load(model.TrainSet, bad); err == nil {
			t.Errorf("%s set loaded", name)
		}
	}
	load(t, e, model.TrainSet, set)
	before := state(t, e)
	for name, idx := range map[string][]int{
		"empty": {}, "negative": {0, -1}, "past the end": {6}, "larger than the batch": {0, 1, 2, 3, 4},
	} {
		if _, err := e.Step(idx); err == nil {
			t.Errorf("%s batch accepted by Step", name)
		}
		if err := e.Forward(model.TrainSet, idx, make([]float64, 5*model.Classes)); err == nil {
			t.Errorf("%s batch accepted by Forward", name)
		}
	}
	if err := e.Forward(model.TrainSet, []int{0, 1}, make([]float64, model.Classes)); err == nil {
		t.Error("Forward wrote 2 rows into room for 1")
	}
	if err := e.Forward(model.Images, []int{0}, make([]float64, model.Classes)); err == nil {
		t.Error("Forward on a set never loaded succeeded")
	}

	sgdState, err := model.NewOptimizerState("sgd")
	if err != nil {
		t.Fatal(err)
	}
	negativeV, err := model.NewOptimizerState("adam")
	if err != nil {
		t.Fatal(err)
	}
	negativeV.Slots[1][0][0] = -1
	nanM, err := model.NewOptimizerState("adam")
	if err != nil {
		t.Fatal(err)
	}
	nanM.Slots[0][2][5] = math.NaN()
	for name, s := range map[string]model.State{
		"no parameters":             {Optimizer: before.Optimizer},
		"another optimizer's state": {Params: before.Params, Optimizer: sgdState},
		"a negative second moment":  {Params: before.Params, Optimizer: negativeV},
		"a NaN first moment":        {Params: before.Params, Optimizer: nanM},
	} {
		if err := e.SetState(s); err == nil {
			t.Errorf("SetState with %s accepted", name)
		}
	}
	after := state(t, e)
	assertParamsEqual(t, after.Params, before.Params)
	assertOptimizerEqual(t, after.Optimizer, before.Optimizer)

	if _, err := e.Step([]int{5, 4, 3}); err != nil {
		t.Fatalf("good batch after bad ones: %v", err)
	}
	testDeviceLoopErrors(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.Step([]int{0}); err == nil {
		t.Error("Step after Close succeeded")
	}
	if _, err := e.State(); err == nil {
		t.Error("State after Close succeeded")
	}
	if _, err := e.Finite(); err == nil {
		t.Error("Finite after Close succeeded")
	}
}

// testDeviceLoopErrors: StepAt needs an order of the training set loaded
// now, and takes steps in any order (the cudagraph engine's device cursor
// is moved only once the steps queued before have run). e has batches of
// 4 and the 6-image training set of testInputErrors.
func testDeviceLoopErrors(t *testing.T, e model.Engine) {
	dl, ok := e.(model.DeviceLoop)
	if !ok {
		t.Fatalf("%T is not a model.DeviceLoop", e)
	}
	if err := dl.StepAt(0, 4); err == nil || !strings.Contains(err.Error(), "SetOrder") {
		t.Errorf("StepAt before SetOrder: %v", err)
	}
	if err := dl.SetOrder([]int{0, 1, 2, 3, 4, 6}); err == nil {
		t.Error("an order naming image 6 of 6 accepted")
	}
	if err := dl.SetOrder([]int{5, 4, 3, 2, 1, 0}); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][2]int{{0, 4}, {4, 6}, {0, 4}, {2, 6}, {0, 4}} {
		if err := dl.StepAt(b[0], b[1]); err != nil {
			t.Fatalf("StepAt(%d, %d): %v", b[0], b[1], err)
		}
	}
	for _, b := range [][2]int{{0, 5}, {4, 7}, {3, 3}, {-1, 2}} {
		if err := dl.StepAt(b[0], b[1]); err == nil {
			t.Errorf("StepAt(%d, %d) accepted", b[0], b[1])
		}
	}
	if ok, err := e.Finite(); err != nil || !ok {
		t.Fatalf("after the steps: finite %v, %v", ok, err)
	}
	load(t, e, model.TrainSet, randomSet(3, 2))
	if err := dl.StepAt(0, 2); err == nil || !strings.Contains(err.Error(), "SetOrder") {
		t.Errorf("StepAt with the order of the training set loaded before: %v", err)
	}
}

// BenchmarkNativeStep times one training step at batch 32, per optimizer.
func BenchmarkNativeStep(bm *testing.B) {
	requireNativeGPU(bm)
	for _, name := range model.OptimizerNames() {
		bm.Run(name, func(bm *testing.B) {
			cfg := nativeTestConfig(32)
			cfg.Optimizer.Name = name
			e := newTestNative(bm, cfg)
			set := learnableSet(1024, 1)
			load(bm, e, model.TrainSet, set)
			idx := identity(32)
			for i := 0; bm.Loop(); i++ {
				for r := range idx {
					idx[r] = (i*32 + r) % set.Len()
				}
				if _, err := e.Step(idx); err != nil {
					bm.Fatal(err)
				}
			}
		})
	}
}
