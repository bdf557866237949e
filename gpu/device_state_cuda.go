//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/cu"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model"
)

// What both CUDA engines (native_cuda.go, graph_engine_cuda.go) do alike
// with the state they keep on the device: data sets uploaded once, and the
// parameters and optimizer slots, in flat buffers laid out by paramLayout,
// exchanged with the host as a model.State.

// Both engines train without a host round trip per step.
var (
	_ model.DeviceLoop = (*nativeEngine)(nil)
	_ model.DeviceLoop = (*graphEngine)(nil)
)

// deviceSet is a data set's images and labels on the GPU.
type deviceSet struct {
	n              int
	images, labels cu.DevicePtr
}

// checkUploadable reports why set cannot go to the GPU under id.
func checkUploadable(id model.DataID, set *data.Set) error {
	if id != model.TrainSet && id != model.TestSet && id != model.Images {
		return fmt.Errorf("load: unknown data set %d", id)
	}
	if err := model.CheckSet(set); err != nil {
		return fmt.Errorf("load %v: %w", id, err)
	}
	if n := set.Len(); n > math.MaxInt32/data.ImageSize {
		return fmt.Errorf("load %v: %d images, at most %d fit", id, n, math.MaxInt32/data.ImageSize)
	}
	return nil
}

// uploadSet copies a checked set to new device memory from mem. The
// context must be current.
func uploadSet(mem *deviceMemory, set *data.Set) (*deviceSet, error) {
	ds := &deviceSet{n: set.Len()}
	var err error
	// alloc wants whole 4-byte words; the tail bytes stay zero.
	if ds.images, err = mem.alloc("images", roundUp4(len(set.Images))); err != nil {
		return nil, err
	}
	if ds.labels, err = mem.alloc("labels", roundUp4(ds.n)); err != nil {
		return nil, errors.Join(err, mem.free(ds.images))
	}
	if err := upload("images", ds.images, set.Images); err != nil {
		return nil, err
	}
	if err := upload("labels", ds.labels, set.Labels); err != nil {
		return nil, err
	}
	return ds, nil
}

func roundUp4(n int) int64 { return (int64(n) + 3) &^ 3 }

func (ds *deviceSet) free(mem *deviceMemory) error {
	return errors.Join(mem.free(ds.images), mem.free(ds.labels))
}

// hostState turns flat host copies of the parameters and the optimizer's
// slots into a model.State (float64, exact).
func hostState(l paramLayout, seed uint64, optName string, step int64, params []float32, slots [][]float32) (model.State, error) {
	p, err := model.NewParams(tensor.Float32, seed)
	if err != nil {
		return model.State{}, err
	}
	if err := p.SetFloat64s(l.unflatten(params)); err != nil {
		return model.State{}, err
	}
	opt := &model.OptimizerState{Name: optName, Step: step}
	for _, h := range slots {
		opt.Slots = append(opt.Slots, l.unflatten(h))
	}
	return model.State{Params: p, Optimizer: opt}, nil
}

// downloadState copies the flat parameter buffer and the optimizer's slots
// to the host. The context must be current.
func downloadState(l paramLayout, params cu.DevicePtr, slots []cu.DevicePtr) ([][]float32, error) {
	host := make([][]float32, 1+len(slots))
	for i, src := range append([]cu.DevicePtr{params}, slots...) {
		host[i] = make([]float32, l.total)
		if err := download("the engine's state", host[i], src); err != nil {
			return nil, err
		}
	}
	return host, nil
}

// uploadState copies flatState's buffers to the device. The context must
// be current.
func uploadState(params cu.DevicePtr, slots []cu.DevicePtr, hostParams []float32, hostSlots [][]float32) error {
	if err := upload("parameters", params, hostParams); err != nil {
		return err
	}
	for i, slot := range hostSlots {
		if err := upload("the optimizer's state", slots[i], slot); err != nil {
			return err
		}
	}
	return nil
}

// flatState checks s against the layout and the engine's optimizer and
// flattens it for upload: float32, zero padding. A nil optimizer state is a
// fresh one.
func flatState(l paramLayout, optName string, s model.State) (params []float32, slots [][]float32, step int64, err error) {
	if s.Params == nil {
		return nil, nil, 0, errors.New("set state: no parameters")
	}
	for i, t := range s.Params.Tensors {
		spec := l.specs[i]
		if t == nil || !t.Shape().Eq(tensor.Shape{spec.Rows, spec.Cols}) {
			return nil, nil, 0, fmt.Errorf("set state: %s is missing or not %d×%d", spec.Name, spec.Rows, spec.Cols)
		}
	}
	opt := s.Optimizer
	if opt == nil {
		if opt, err = model.NewOptimizerState(optName); err != nil {
			return nil, nil, 0, err
		}
	}
	if opt.Name != optName {
		return nil, nil, 0, fmt.Errorf("set state: the optimizer state is %s's, this engine trains with %s", opt.Name, optName)
	}
	if err := opt.Check(); err != nil {
		return nil, nil, 0, fmt.Errorf("set state: %w", err)
	}
	params = l.flatten(s.Params.Float64s())
	for _, slot := range opt.Slots {
		slots = append(slots, l.flatten(slot))
	}
	return params, slots, opt.Step, nil
}

// loopState is what a DeviceLoop engine keeps on the device between steps:
// the epoch's image order and the running totals of the rows' losses and
// hits (two doubles, added to by accumulate_scores). Its methods need the
// engine's context current.
type loopState struct {
	order    cu.DevicePtr // int32 per image
	orderLen int
	totals   cu.DevicePtr // 2 doubles: loss sum, hits
}

func (l *loopState) alloc(mem *deviceMemory) (err error) {
	l.totals, err = mem.alloc("running totals", 16)
	return err
}

// checkOrder converts an order of the n images of the training set for
// upload, refusing anything but image numbers of the set.
func checkOrder(order []int, n int) ([]int32, error) {
	if len(order) != n {
		return nil, fmt.Errorf("an order of %d images for a training set of %d", len(order), n)
	}
	host := make([]int32, n)
	for i, v := range order {
		if v < 0 || v >= n {
			return nil, fmt.Errorf("image %d of the order is out of range for a set of %d", v, n)
		}
		host[i] = int32(v)
	}
	return host, nil
}

// setOrder uploads a checked order, reallocating only when its length
// changes.
func (l *loopState) setOrder(mem *deviceMemory, host []int32) error {
	if l.orderLen != len(host) {
		if l.orderLen != 0 {
			if err := mem.free(l.order); err != nil {
				return err
			}
			l.orderLen = 0
		}
		p, err := mem.alloc("image order", int64(len(host))*4)
		if err != nil {
			return err
		}
		l.order, l.orderLen = p, len(host)
	}
	return upload("image order", l.order, host)
}

// dropOrder forgets the epoch's order. A new training set makes it
// meaningless (it may name images the set no longer has), so StepAt waits
// for the next SetOrder, which checks the order against the set.
func (l *loopState) dropOrder(mem *deviceMemory) error {
	if l.orderLen == 0 {
		return nil
	}
	l.orderLen = 0
	return mem.free(l.order)
}

// batchAt is the device address of order[lo:hi] after checking the range
// against the order and the batch size.
func (l *loopState) batchAt(lo, hi, batch int) (cu.DevicePtr, error) {
	switch {
	case l.orderLen == 0:
		return 0, errors.New("StepAt before SetOrder")
	case lo < 0 || hi <= lo || hi > l.orderLen || hi-lo > batch:
		return 0, fmt.Errorf("batch [%d, %d) does not fit an order of %d and batches of %d", lo, hi, l.orderLen, batch)
	}
	return l.order + cu.DevicePtr(4*lo), nil
}

// trainingBatch is the training set and the device address of order[lo:hi]
// for a step, after checking that both are there and that the range fits.
func (l *loopState) trainingBatch(sets map[model.DataID]*deviceSet, lo, hi, batch int) (*deviceSet, cu.DevicePtr, error) {
	ds := sets[model.TrainSet]
	if ds == nil {
		return nil, 0, errors.New("StepAt before Load")
	}
	at, err := l.batchAt(lo, hi, batch)
	return ds, at, err
}

// readTotals waits for the queued work and reads the totals.
func (l *loopState) readTotals() (float64, int, error) {
	t := []float64{0, 0}
	if err := download("running totals", t, l.totals); err != nil {
		return 0, 0, err
	}
	return t[0], int(t[1]), nil
}

// readStepResult copies a step's per-row results (loss, hit; len(host)/2
// rows) from stats into host and reports them as Step does: the mean loss,
// summed in row order in float64 as model.ScoreLogProbs does, and the hits.
// The context must be current.
func readStepResult(host []float32, stats cu.DevicePtr) (model.StepResult, error) {
	if err := download("per-row results", host, stats); err != nil {
		return model.StepResult{}, err
	}
	rows := len(host) / 2
	var res model.StepResult
	var lossSum float64
	for r := 0; r < rows; r++ {
		lossSum += float64(host[2*r])
		if host[2*r+1] != 0 {
			res.Hits++
		}
	}
	res.Loss = lossSum / float64(rows)
	return res, nil
}

// checkTotals refuses a hit count a double cannot hold exactly.
func checkTotals(hits int) error {
	if hits < 0 || hits > 1<<52 {
		return fmt.Errorf("%d hits cannot be a running total", hits)
	}
	return nil
}

func (l *loopState) writeTotals(lossSum float64, hits int) error {
	return upload("running totals", l.totals, []float64{lossSum, float64(hits)})
}
