package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"mnist/data"
)

// Metrics is the result of an evaluation.
type Metrics struct {
	Accuracy float64 // fraction of images whose most likely class is the label
	Loss     float64 // mean cross-entropy per image
	Images   int
}

// Evaluator runs the forward pass only, over a whole set, reading whatever
// parameters it is given at the time of the call.
type Evaluator struct {
	graph *graph
}

// NewEvaluator compiles a forward-only graph for batches of the given size.
func NewEvaluator(dt tensor.Dtype, batch int, vmOpts ...G.VMOpt) (*Evaluator, error) {
	if batch < 1 {
		return nil, fmt.Errorf("evaluation batch size must be >= 1, got %d", batch)
	}
	gr, err := buildGraph(dt, batch, false, vmOpts)
	if err != nil {
		return nil, fmt.Errorf("build evaluation graph: %w", err)
	}
	return &Evaluator{graph: gr}, nil
}

// Close releases the compiled graph.
func (e *Evaluator) Close() error { return e.graph.Close() }

// Evaluate scores p on every image of set in order. The last batch may be
// partial (16 images for the 10,000 test images at batch 32); it is padded
// and only its real rows count.
func (e *Evaluator) Evaluate(p *Params, set *data.Set) (Metrics, error) {
	gr := e.graph
	if err := gr.bindParams(p); err != nil {
		return Metrics{}, err
	}
	batch := gr.xT.Shape()[0]
	n := set.Len()
	idx := make([]int, 0, batch)
	var lossSum float64
	var correct int
	for lo := 0; lo < n; lo += batch {
		idx = idx[:0]
		for i := lo; i < min(lo+batch, n); i++ {
			idx = append(idx, i)
		}
		if err := loadBatch(gr, set, idx); err != nil {
			return Metrics{}, err
		}
		if err := gr.run(); err != nil {
			return Metrics{}, fmt.Errorf("evaluate images %d-%d: %w", lo, lo+len(idx)-1, err)
		}
		hits, loss := scoreRows(gr.logProbs.Value(), set, idx)
		correct += hits
		lossSum += loss
	}
	if n == 0 {
		return Metrics{}, fmt.Errorf("evaluate: the set is empty")
	}
	return Metrics{
		Accuracy: float64(correct) / float64(n),
		Loss:     lossSum / float64(n),
		Images:   n,
	}, nil
}

// scoreRows compares the log-probabilities of the real rows with their
// labels. It returns the number classified right and the summed
// cross-entropy of those rows.
func scoreRows(logProbs G.Value, set *data.Set, idx []int) (hits int, loss float64) {
	switch lp := logProbs.Data().(type) {
	case []float32:
		return score(lp, set, idx)
	case []float64:
		return score(lp, set, idx)
	}
	return 0, 0
}

func score[T float32 | float64](lp []T, set *data.Set, idx []int) (hits int, loss float64) {
	for r, img := range idx {
		row := lp[r*Classes : (r+1)*Classes]
		best := 0
		for c := 1; c < Classes; c++ {
			if row[c] > row[best] {
				best = c
			}
		}
		label := int(set.Labels[img])
		if best == label {
			hits++
		}
		loss -= float64(row[label])
	}
	return hits, loss
}
