//go:build cuda

package gpu

import (
	"testing"

	"mnist/model"
	"mnist/model/reference"
)

// The engines have no verb that returns gradients; the parity tests read
// them from the optimizer instead. An Adam engine with β1 = 0, after one
// step from a fresh optimizer, holds m = β1·0 + (1-β1)·g = g: the step's
// gradient, exactly (in the weights' float32), whatever the device.

// probeConfig is cfg with Adam's β1 set to 0, for an engine probeAt uses.
func probeConfig(cfg model.Config) model.Config {
	cfg.Optimizer.Name = "adam"
	cfg.Optimizer.Beta1 = 0
	return cfg
}

// enginePass is one forward and backward pass on given weights.
type enginePass struct {
	Loss     float64 // Step's, before its update
	Hits     int     // Step's, before its update
	LogProbs []float64
	Grads    reference.Params
}

// probeAt runs images idx of e's TrainSet through e (an engine made with
// probeConfig) at weights p: Forward for the log-probabilities, then one Step
// from a fresh optimizer, whose first moment is the gradient at p.
func probeAt(t testing.TB, e model.Engine, p *model.Params, idx []int) enginePass {
	t.Helper()
	if err := e.SetState(model.State{Params: p}); err != nil { // nil Optimizer: a fresh one
		t.Fatalf("probe: SetState: %v", err)
	}
	lp := make([]float64, len(idx)*model.Classes)
	if err := e.Forward(model.TrainSet, idx, lp); err != nil {
		t.Fatalf("probe: Forward: %v", err)
	}
	res, err := e.Step(idx)
	if err != nil {
		t.Fatalf("probe: Step: %v", err)
	}
	s, err := e.State()
	if err != nil {
		t.Fatalf("probe: State: %v", err)
	}
	if o := s.Optimizer; o == nil || o.Name != "adam" || o.Step != 1 || len(o.Slots) != 2 {
		t.Fatalf("probe: after one step from a fresh Adam the optimizer state is %+v", o)
	}
	return enginePass{Loss: res.Loss, Hits: res.Hits, LogProbs: lp, Grads: reference.Params(s.Optimizer.Slots[0])}
}
