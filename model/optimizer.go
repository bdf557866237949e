package model

import (
	"fmt"
	"math"
	"strings"

	"gorgonia.org/tensor"

	"mnist/model/kernels"
)

// An optimizer is known to this package by its name, the hyperparameters it
// reads from OptimizerConfig and the state it keeps: one or more tensors per
// parameter (its "slots": Adam's m and v, SGD's velocity) and a step count.
// Checkpoints, metrics and model files handle that state and those settings
// by name, without knowing which optimizer they belong to. Each optimizer has
// one file per device: model/adam.go and model/sgd.go for the host, and
// gpu's native engine has its own.

// OptimizerConfig chooses the optimizer and its hyperparameters. Each
// optimizer reads the fields it needs and ignores the rest.
type OptimizerConfig struct {
	Name         string // "adam" (the spec) or "sgd"
	LearningRate float64
	// Adam's (Keras's defaults: 0.9, 0.999, 1e-7).
	Beta1, Beta2, Epsilon float64
	// SGD's (Keras's SGD(momentum=0.9) when chosen with -optimizer sgd).
	Momentum float64
}

// Setting is one named hyperparameter, as files and logs record it.
type Setting struct {
	Name  string
	Value float64
}

// optimizerKind is what the generic code needs to know of one optimizer.
type optimizerKind struct {
	// slots name the per-parameter state tensors, stored in checkpoints as
	// "<optimizer>.<slot>.<parameter>".
	slots []string
	// settings are the hyperparameters the optimizer uses, learning rate
	// first.
	settings func(OptimizerConfig) []Setting
	// validate reports the first hyperparameter that cannot work.
	validate func(OptimizerConfig) error
	// checkState reports the first value of a saved state that no run of
	// this optimizer can produce (Adam's second moment is never negative).
	checkState func(*OptimizerState) error
	// newHost makes the optimizer that updates host tensors.
	newHost func(OptimizerConfig, *Params, *kernels.Crew) hostOptimizer
}

// OptimizerNames lists the optimizers, the default first.
func OptimizerNames() []string { return []string{adamName, sgdName} }

func kindOf(name string) (optimizerKind, error) {
	switch name {
	case adamName:
		return adamKind(), nil
	case sgdName:
		return sgdKind(), nil
	}
	return optimizerKind{}, fmt.Errorf("unknown optimizer %q: use %s", name, strings.Join(OptimizerNames(), " or "))
}

// Settings returns the hyperparameters this optimizer uses, learning rate
// first; nil for an unknown optimizer.
func (c OptimizerConfig) Settings() []Setting {
	k, err := kindOf(c.Name)
	if err != nil {
		return nil
	}
	return k.settings(c)
}

// Validate reports the first setting that cannot work.
func (c OptimizerConfig) Validate() error {
	k, err := kindOf(c.Name)
	if err != nil {
		return err
	}
	if !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0) {
		return fmt.Errorf("learning rate must be a positive number, got %v", c.LearningRate)
	}
	return k.validate(c)
}

// field is the hyperparameter a Setting of this name holds.
func (c *OptimizerConfig) field(name string) *float64 {
	switch name {
	case "lr":
		return &c.LearningRate
	case "beta1":
		return &c.Beta1
	case "beta2":
		return &c.Beta2
	case "epsilon":
		return &c.Epsilon
	case "momentum":
		return &c.Momentum
	}
	return nil
}

// Set stores each setting in its field, as files that record settings
// by name (checkpoints, model files) are read back.
func (c *OptimizerConfig) Set(settings []Setting) error {
	for _, s := range settings {
		f := c.field(s.Name)
		if f == nil {
			return fmt.Errorf("unknown optimizer setting %q", s.Name)
		}
		*f = s.Value
	}
	return nil
}

// maxOptimizerStep bounds a saved step count: 2^40 steps of batch 1 would
// take longer than anyone trains this network, and a bigger count can only
// come from a damaged file.
const maxOptimizerStep = 1 << 40

// OptimizerState is an optimizer's state in host memory: its step count and
// its slots, each one flat tensor per parameter in Params order, as long as
// that parameter. float64 holds either dtype's values exactly, so a resumed
// run continues bit for bit.
type OptimizerState struct {
	Name  string
	Step  int64
	Slots [][6][]float64 // [slot][parameter]
}

// NewOptimizerState is the state of an optimizer before its first step:
// every slot zero.
func NewOptimizerState(name string) (*OptimizerState, error) {
	k, err := kindOf(name)
	if err != nil {
		return nil, err
	}
	s := &OptimizerState{Name: name, Slots: make([][6][]float64, len(k.slots))}
	for i := range s.Slots {
		for j, shape := range paramShapes() {
			s.Slots[i][j] = make([]float64, shape.TotalSize())
		}
	}
	return s, nil
}

// SlotNames are the names of the optimizer's per-parameter state tensors.
func (s *OptimizerState) SlotNames() ([]string, error) {
	k, err := kindOf(s.Name)
	if err != nil {
		return nil, err
	}
	return k.slots, nil
}

// TensorName is the file name of slot i of parameter p, e.g.
// "adam.m.dense1.weight".
func (s *OptimizerState) TensorName(slot string, p int) string {
	return s.Name + "." + slot + "." + ParamNames()[p]
}

// Check reports the first way s cannot be the state of this network's
// optimizer: an unknown optimizer, a step count out of range, a slot missing
// or of the wrong length, a value that is not finite or that the optimizer
// never produces. The error names the field or tensor.
func (s *OptimizerState) Check() error {
	k, err := kindOf(s.Name)
	if err != nil {
		return err
	}
	if s.Step < 0 || s.Step > maxOptimizerStep {
		return fmt.Errorf("optimizer step count %d is outside 0..%d", s.Step, int64(maxOptimizerStep))
	}
	if len(s.Slots) != len(k.slots) {
		return fmt.Errorf("%s keeps %d state tensors per parameter, got %d", s.Name, len(k.slots), len(s.Slots))
	}
	for i, slot := range k.slots {
		for p, shape := range paramShapes() {
			xs := s.Slots[i][p]
			if len(xs) != shape.TotalSize() {
				return fmt.Errorf("%s has %d values, want %d", s.TensorName(slot, p), len(xs), shape.TotalSize())
			}
			if at, v := firstNonFinite(xs); at >= 0 {
				return fmt.Errorf("%s[%d] is %v", s.TensorName(slot, p), at, v)
			}
		}
	}
	return k.checkState(s)
}

// hostOptimizer updates host tensors: the graph engine's optimizer, on the
// CPU and under Gorgonia's CUDA engine alike.
type hostOptimizer interface {
	// update applies one step to p from its gradients.
	update(p *Params, grads [6]*tensor.Dense) error
	// state copies the state out; setState copies a checked one in.
	state() *OptimizerState
	setState(*OptimizerState)
}

// newHostOptimizer starts the optimizer cfg names for p's tensors, in their
// dtype, with its state zero.
func newHostOptimizer(cfg OptimizerConfig, p *Params, crew *kernels.Crew) (hostOptimizer, error) {
	k, err := kindOf(cfg.Name)
	if err != nil {
		return nil, err
	}
	return k.newHost(cfg, p, crew), nil
}

// slotBuffers are an optimizer's per-parameter state in the weights'
// precision: slots×6 slices.
type slotBuffers[T float32 | float64] [][6][]T

func newSlotBuffers[T float32 | float64](slots int, p *Params) slotBuffers[T] {
	b := make(slotBuffers[T], slots)
	for i := range b {
		for j, t := range p.Tensors {
			b[i][j] = make([]T, t.Shape().TotalSize())
		}
	}
	return b
}

// widen copies the buffers out as float64, the state's format.
func (b slotBuffers[T]) widen() [][6][]float64 {
	out := make([][6][]float64, len(b))
	for i := range b {
		for j, xs := range b[i] {
			out[i][j] = make([]float64, len(xs))
			for k, x := range xs {
				out[i][j][k] = float64(x)
			}
		}
	}
	return out
}

// narrow copies a checked state's slots in; values saved from a float32
// model come back exactly.
func (b slotBuffers[T]) narrow(src [][6][]float64) {
	for i := range b {
		for j, xs := range src[i] {
			for k, x := range xs {
				b[i][j][k] = T(x)
			}
		}
	}
}

// slotState is what every host optimizer keeps besides its settings: its
// name, its step count and its slots in the weights' precision (exactly one
// of f32 and f64 is set). It provides the state and setState methods of
// hostOptimizer.
type slotState struct {
	name string
	step int64
	f32  slotBuffers[float32]
	f64  slotBuffers[float64]
}

func newSlotState(name string, slots int, p *Params) slotState {
	s := slotState{name: name}
	if p.Tensors[0].Dtype() == tensor.Float64 {
		s.f64 = newSlotBuffers[float64](slots, p)
	} else {
		s.f32 = newSlotBuffers[float32](slots, p)
	}
	return s
}

func (s *slotState) state() *OptimizerState {
	st := &OptimizerState{Name: s.name, Step: s.step}
	if s.f32 != nil {
		st.Slots = s.f32.widen()
	} else {
		st.Slots = s.f64.widen()
	}
	return st
}

func (s *slotState) setState(st *OptimizerState) {
	s.step = st.Step
	if s.f32 != nil {
		s.f32.narrow(st.Slots)
	} else {
		s.f64.narrow(st.Slots)
	}
}

// gradientsOf returns the weights and gradient of parameter i as T slices,
// or false when they are not both T and the same length as want.
func gradientsOf[T float32 | float64](w, g *tensor.Dense, want int) ([]T, []T, bool) {
	wd, ok1 := w.Data().([]T)
	gd, ok2 := g.Data().([]T)
	return wd, gd, ok1 && ok2 && len(wd) == len(gd) && len(wd) == want
}
