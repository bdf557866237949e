//go:build cuda

package gpu

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/model"
)

// deviceGraph is the network as one Gorgonia graph of the device ops
// (graph_ops_cuda.go): the batch, the first layer's product, the rows op
// (the rest of the network and the loss), the gradients Gorgonia derives
// from the ops' SymDiff, and the optimizer's update, so that one run of its
// program is one training step.
type deviceGraph struct {
	g      *G.ExprGraph
	params [6]*G.Node
	loss   *G.Node
	grads  G.Nodes
	update *G.Node
}

// buildDeviceGraph builds the graph whose ops work on r.
func buildDeviceGraph(r *graphRun) (*deviceGraph, error) {
	g := G.NewGraph()
	dg := &deviceGraph{g: g}
	for i, s := range r.layout.specs {
		op := &paramOp{deviceOp: deviceOp{"param." + s.Name, r}, index: i}
		dg.params[i] = G.NewMatrix(g, tensor.Float32, G.WithShape(s.Rows, s.Cols), G.WithName(s.Name), G.WithOp(op))
	}
	// Arity-0 ops need the graph named: G.ApplyOp finds it from children.
	h := G.NewMatrix(g, tensor.Float32, G.WithShape(r.batch, imagePixels), G.WithName("x"),
		G.WithOp(&batchOp{deviceOp{"batch", r}, r.batch, r.reserveOutput(tensor.Shape{r.batch, imagePixels})}))
	z, err := G.ApplyOp(&productOp{deviceOp{"dense1.product", r}, r.reserveOutput(tensor.Shape{r.batch, model.Hidden1})},
		h, dg.params[0])
	if err != nil {
		return nil, fmt.Errorf("dense1 product: %w", err)
	}
	rows := &rowsOp{deviceOp{"rows", r}, r.reserveOutput(tensor.ScalarShape())}
	if dg.loss, err = G.ApplyOp(rows, append(G.Nodes{z}, dg.params[1:]...)...); err != nil {
		return nil, fmt.Errorf("rows: %w", err)
	}
	// G.Grad differentiates only with respect to input nodes; the
	// parameters here are op nodes (they own device memory), which
	// Backpropagate accepts. rowsOp's gradient does not read the seed: the
	// loss is the cost, and its seed is 1.
	seed := G.NewScalar(g, tensor.Float32, G.WithName("seed"), G.WithValue(float32(1)))
	if dg.grads, err = G.Backpropagate(G.Nodes{dg.loss}, G.Nodes{seed}, dg.params[:]); err != nil {
		return nil, fmt.Errorf("gradients: %w", err)
	}
	inputs := append(append(G.Nodes{}, dg.params[:]...), dg.grads...)
	if dg.update, err = G.ApplyOp(&updateOp{deviceOp{"update", r}, r.reserveOutput(tensor.ScalarShape())}, inputs...); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	return dg, nil
}

// programListing compiles the graph as the tape machine does and returns
// Gorgonia's listing of the program: every instruction, with the device
// of each register it reads and writes. Compiling touches no GPU.
func (dg *deviceGraph) programListing() (string, error) {
	prog, _, err := G.Compile(dg.g)
	if err != nil {
		return "", fmt.Errorf("compile: %w", err)
	}
	return prog.String(), nil
}
