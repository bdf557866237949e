//go:build cuda

package gpu

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// deviceGraph is the network as one Gorgonia graph of the device ops:
// forward, the gradients Gorgonia derives from the ops' SymDiff, and the
// optimizer's update, so that one run of its program is one training step.
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
	var err error
	for l := 0; l < 3; l++ {
		_, n := layerWidths(l)
		op := &denseOp{deviceOp: deviceOp{fmt.Sprintf("dense%d", l+1), r}, layer: l, relu: l < 2, inputGrad: l > 0,
			out: r.reserveOutput(tensor.Shape{r.batch, n})}
		if h, err = G.ApplyOp(op, h, dg.params[2*l], dg.params[2*l+1]); err != nil {
			return nil, fmt.Errorf("dense%d: %w", l+1, err)
		}
	}
	if dg.loss, err = G.ApplyOp(&lossOp{deviceOp{"cross_entropy", r}, r.reserveOutput(tensor.ScalarShape())}, h); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	// G.Grad differentiates only with respect to input nodes; the
	// parameters here are op nodes (they own device memory), which
	// Backpropagate accepts. lossOp's gradient does not read the seed: the
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
