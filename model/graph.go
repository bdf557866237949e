package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/data"
	"mnist/model/kernels"
)

// graph is one compiled forward (and, for training, backward) pass over a
// fixed batch size. A batch with fewer real rows than the graph holds is
// padded with zero rows: a zero one-hot row contributes nothing to the loss or
// to any gradient, and invCount scales the summed loss by 1/real rows, so the
// padded result is exactly the mean over the real rows.
type graph struct {
	g        *G.ExprGraph
	x, y     *G.Node // inputs: batch×784 pixels, batch×10 one-hot labels
	invCount *G.Node // scalar input: 1 / number of real rows
	params   [6]*G.Node
	logProbs *G.Node // batch×10 log-softmax of the logits
	loss     *G.Node // scalar: mean cross-entropy over the real rows
	// gradNodes are the gradients of the loss with respect to the
	// parameters (training graphs only).
	gradNodes [6]*G.Node
	// gradVals receive a host copy of each gradient at every run, through
	// Gorgonia's Read op, in the full program (see buildGraph).
	gradVals [6]G.Value
	vm       G.VM

	xT, yT *tensor.Dense // reused input buffers, bound to x and y once
	blas   kernels.BLAS  // what the fused ops multiply with
}

// buildGraph builds the network for a batch of the given size. With training
// set, it also builds the symbolic gradients of the loss with respect to the
// parameters.
func buildGraph(dt tensor.Dtype, batch int, training bool, opts graphOptions) (*graph, error) {
	gr := &graph{g: G.NewGraph(), blas: kernels.BLAS{Crew: opts.crew}}
	g := gr.g
	gr.x = G.NewMatrix(g, dt, G.WithShape(batch, Inputs), G.WithName("x"))
	gr.y = G.NewMatrix(g, dt, G.WithShape(batch, Classes), G.WithName("y"))
	gr.invCount = G.NewScalar(g, dt, G.WithName("inv_count"))
	for i, shape := range paramShapes() {
		gr.params[i] = G.NewMatrix(g, dt, G.WithShape(shape...), G.WithName(ParamNames()[i]))
	}

	build := gr.buildForward
	if opts.fused {
		if dt != tensor.Float32 {
			return nil, fmt.Errorf("fused ops need float32, not %v", dt)
		}
		build = gr.buildForwardFused
	}
	if err := build(); err != nil {
		return nil, fmt.Errorf("build forward pass: %w", err)
	}
	var outputs G.Nodes
	if training {
		grads, err := G.Grad(gr.loss, gr.params[:]...)
		if err != nil {
			return nil, fmt.Errorf("build gradients: %w", err)
		}
		copy(gr.gradNodes[:], grads)
		outputs = grads
		// The full program reads the gradients through Read ops, not the
		// parameters' dual values: under Gorgonia's CUDA machine the
		// write-back of dual values left them all zero (seen on an H100),
		// while a Read is part of the program on any device. The pruned
		// program (the CPU build's) reads
		// them straight off their nodes, which the CPU machine binds to the
		// values it computes, and saves copying 100,000 floats a step.
		if !opts.prune {
			for i, g := range grads {
				G.Read(g, &gr.gradVals[i])
			}
		}
	}

	var err error
	if gr.xT, err = newZeroTensor(dt, tensor.Shape{batch, Inputs}); err != nil {
		return nil, err
	}
	if gr.yT, err = newZeroTensor(dt, tensor.Shape{batch, Classes}); err != nil {
		return nil, err
	}
	if err := G.Let(gr.x, gr.xT); err != nil {
		return nil, fmt.Errorf("bind x: %w", err)
	}
	if err := G.Let(gr.y, gr.yT); err != nil {
		return nil, fmt.Errorf("bind y: %w", err)
	}
	var vmOpts []G.VMOpt
	if opts.prune {
		precompiled, err := gr.compilePruned(training, outputs)
		if err != nil {
			return nil, err
		}
		vmOpts = append(vmOpts, precompiled)
	}
	gr.vm = G.NewTapeMachine(g, vmOpts...)
	return gr, nil
}

func (gr *graph) buildForward() error {
	h := gr.x
	for layer := 0; layer < 3; layer++ {
		w, b := gr.params[2*layer], gr.params[2*layer+1]
		xw, err := G.Mul(h, w)
		if err != nil {
			return fmt.Errorf("dense%d matmul: %w", layer+1, err)
		}
		// b is 1×n: repeat it along the batch axis (axis 0).
		if h, err = G.BroadcastAdd(xw, b, nil, []byte{0}); err != nil {
			return fmt.Errorf("dense%d bias: %w", layer+1, err)
		}
		if layer < 2 {
			if h, err = G.Rectify(h); err != nil {
				return fmt.Errorf("dense%d relu: %w", layer+1, err)
			}
		}
	}
	// Cross-entropy through log-softmax rather than log(softmax): it never
	// takes the log of an underflowed zero probability.
	var err error
	if gr.logProbs, err = logSoftmax(h); err != nil {
		return fmt.Errorf("log-softmax: %w", err)
	}
	picked, err := G.HadamardProd(gr.y, gr.logProbs)
	if err != nil {
		return fmt.Errorf("pick true-class log-probabilities: %w", err)
	}
	total, err := G.Sum(picked)
	if err != nil {
		return fmt.Errorf("sum loss: %w", err)
	}
	mean, err := G.HadamardProd(total, gr.invCount)
	if err != nil {
		return fmt.Errorf("scale loss: %w", err)
	}
	if gr.loss, err = G.Neg(mean); err != nil {
		return fmt.Errorf("negate loss: %w", err)
	}
	return nil
}

// buildForwardFused builds the same network from the fused ops of fused.go:
// one op a layer and one for the cross-entropy.
func (gr *graph) buildForwardFused() error {
	h := gr.x
	for layer := 0; layer < 3; layer++ {
		op := newDenseOp(gr.blas, layer+1, layer < 2, layer > 0)
		var err error
		if h, err = G.ApplyOp(op, h, gr.params[2*layer], gr.params[2*layer+1]); err != nil {
			return fmt.Errorf("dense%d: %w", layer+1, err)
		}
	}
	var err error
	if gr.logProbs, err = logSoftmax(h); err != nil {
		return fmt.Errorf("log-softmax: %w", err)
	}
	if gr.loss, err = G.ApplyOp(&crossEntropyOp{fusedOp{"crossEntropy"}}, gr.logProbs, gr.y, gr.invCount); err != nil {
		return fmt.Errorf("cross-entropy: %w", err)
	}
	return nil
}

// compilePruned compiles only what the results need. Differentiating x·W
// gives Gorgonia's graph the gradient with respect to x as well, a
// batch×784 product as costly as the first layer's forward pass, which
// nothing reads; compiling the whole graph would run it every step.
func (gr *graph) compilePruned(training bool, grads G.Nodes) (G.VMOpt, error) {
	inputs := append(G.Nodes{gr.x}, gr.params[:]...)
	outputs := G.Nodes{gr.logProbs}
	if training {
		inputs = append(inputs, gr.y, gr.invCount)
		outputs = append(outputs, grads...)
	}
	prog, locMap, err := G.CompileFunction(gr.g, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	return G.WithPrecompiled(prog, locMap), nil
}

// bindParams points the graph's parameter nodes at p's tensors. Both graphs
// bind the same tensors, so what the optimiser writes the evaluation reads.
func (gr *graph) bindParams(p *Params) error {
	for i, n := range gr.params {
		if err := G.Let(n, p.Tensors[i]); err != nil {
			return fmt.Errorf("bind %s: %w", ParamNames()[i], err)
		}
	}
	return nil
}

// setCount tells the graph how many rows of the batch are real.
func (gr *graph) setCount(n int) error {
	var v G.Value
	switch gr.xT.Dtype() {
	case tensor.Float64:
		v = G.NewF64(1 / float64(n))
	default:
		v = G.NewF32(1 / float32(n))
	}
	return G.Let(gr.invCount, v)
}

// run executes the pass once and leaves the values on the nodes.
func (gr *graph) run() error {
	gr.vm.Reset()
	return gr.vm.RunAll()
}

// grad is the gradient of the loss with respect to parameter i, as left by
// the last run.
func (gr *graph) grad(i int) (*tensor.Dense, error) {
	v := gr.gradVals[i]
	if v == nil && gr.gradNodes[i] != nil {
		v = gr.gradNodes[i].Value()
	}
	if v == nil {
		return nil, fmt.Errorf("gradient of %s: not computed (is this a training graph, and has it run?)", ParamNames()[i])
	}
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("gradient of %s is %T, want a dense tensor", ParamNames()[i], v)
	}
	return d, nil
}

// Close releases the machine (and any device memory it holds).
func (gr *graph) Close() error {
	return gr.vm.Close()
}

// loadBatch copies the images at idx into the graph's input buffers, padding
// the rows past len(idx) with zeros, and sets the real-row count.
func loadBatch(gr *graph, set *data.Set, idx []int) error {
	switch x := gr.xT.Data().(type) {
	case []float32:
		y := gr.yT.Data().([]float32)
		fillPadded(set, idx, x, y)
	case []float64:
		y := gr.yT.Data().([]float64)
		fillPadded(set, idx, x, y)
	default:
		return fmt.Errorf("unsupported input dtype %v", gr.xT.Dtype())
	}
	return gr.setCount(len(idx))
}

func fillPadded[T float32 | float64](set *data.Set, idx []int, x, y []T) {
	rows := len(idx)
	data.FillBatch(set, idx, x[:rows*Inputs], y[:rows*Classes])
	clear(x[rows*Inputs:])
	clear(y[rows*Classes:])
}
