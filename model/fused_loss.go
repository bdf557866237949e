package model

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// crossEntropyOp is the mean cross-entropy -Σ y⊙logp · invCount from the
// log-probabilities, the one-hot labels and 1/(real rows).
type crossEntropyOp struct{ fusedOp }

func (op *crossEntropyOp) Arity() int { return 3 }

func (op *crossEntropyOp) Type() hm.Type {
	m, s := matrixType()
	return hm.NewFnType(m, m, s, s)
}

func (op *crossEntropyOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *crossEntropyOp) Do(inputs ...G.Value) (G.Value, error) {
	d, _, err := matrices(op, 2, inputs[:min(2, len(inputs))])
	if err != nil {
		return nil, err
	}
	inv, err := scalarF32(op, inputs, 2)
	if err != nil {
		return nil, err
	}
	var total float32
	for i, y := range d[1] {
		total += float32(y * d[0][i])
	}
	return G.NewF32(-(total * inv)), nil
}

func (op *crossEntropyOp) DiffWRT(int) []bool { return []bool{true, false, false} }

func (op *crossEntropyOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dlogp, err := G.ApplyOp(&crossEntropyGradOp{fusedOp: fusedOp{"crossEntropyGrad"}}, inputs[1], inputs[2], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dlogp, nil, nil}, nil
}

// crossEntropyGradOp is dlogp = y ⊙ (invCount · -seed), in the stock
// graph's order: the seed (1) negated, times invCount, times each label.
type crossEntropyGradOp struct {
	fusedOp
	out outputBuffer
}

func (op *crossEntropyGradOp) Arity() int { return 3 }

func (op *crossEntropyGradOp) Type() hm.Type {
	m, s := matrixType()
	return hm.NewFnType(m, s, s, m)
}

func (op *crossEntropyGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input shape %v, want a matrix", op, in[0])
	}
	return s, nil
}

func (op *crossEntropyGradOp) Do(inputs ...G.Value) (G.Value, error) {
	d, s, err := matrices(op, 1, inputs[:1])
	if err != nil {
		return nil, err
	}
	inv, err := scalarF32(op, inputs, 1)
	if err != nil {
		return nil, err
	}
	seed, err := scalarF32(op, inputs, 2)
	if err != nil {
		return nil, err
	}
	scale := inv * -seed
	t, dlogp := op.out.get(s[0][0], s[0][1])
	for i, y := range d[0] {
		dlogp[i] = y * scale
	}
	return t, nil
}
