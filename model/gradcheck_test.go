package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGradientsMatchFiniteDifferences checks the graph's symbolic gradients
// against central differences of the loss, in float64, for a sample of
// entries of every parameter. The graph holds 4 rows but gets 3 real images,
// so the padding path is checked too.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	set := syntheticSet(3, 7)
	params, err := NewParams(tensor.Float64, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Non-zero biases, so their gradients flow through every path.
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 1; i < 6; i += 2 {
		fillUniform(params.Tensors[i], rng, 0.1)
	}
	gr, err := buildGraph(tensor.Float64, 4, true, graphOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Close()
	if err := gr.bindParams(params); err != nil {
		t.Fatal(err)
	}
	idx := []int{0, 1, 2}
	lossAt := func() float64 {
		t.Helper()
		if err := loadBatch(gr, set, idx); err != nil {
			t.Fatal(err)
		}
		if err := gr.run(); err != nil {
			t.Fatal(err)
		}
		_, sum, err := scoreRows(gr.logProbs.Value(), set, idx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sum / float64(len(idx))
	}

	lossAt()
	var analytic [6][]float64
	for i := range analytic {
		g, err := gr.grad(i)
		if err != nil {
			t.Fatal(err)
		}
		analytic[i] = append([]float64(nil), g.Data().([]float64)...)
	}

	const h = 1e-6
	for i, p := range params.Tensors {
		w := p.Data().([]float64)
		for k := 0; k < 25; k++ {
			j := rng.IntN(len(w))
			orig := w[j]
			w[j] = orig + h
			up := lossAt()
			w[j] = orig - h
			down := lossAt()
			w[j] = orig
			numeric := (up - down) / (2 * h)
			got := analytic[i][j]
			if diff := math.Abs(got - numeric); diff > 1e-6+1e-4*math.Abs(numeric) {
				t.Errorf("%s[%d]: gradient %.9g, finite difference %.9g", ParamNames()[i], j, got, numeric)
			}
		}
	}
}

// TestLossIsMeanCrossEntropy checks the loss against a direct computation
// from the graph's own log-probabilities, and that padding rows change
// nothing.
func TestLossIsMeanCrossEntropy(t *testing.T) {
	set := syntheticSet(5, 11)
	params, err := NewParams(tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	losses := map[int]float64{}
	for _, batch := range []int{5, 8} {
		gr, err := buildGraph(tensor.Float64, batch, false, graphOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := gr.bindParams(params); err != nil {
			t.Fatal(err)
		}
		idx := []int{0, 1, 2, 3, 4}
		if err := loadBatch(gr, set, idx); err != nil {
			t.Fatal(err)
		}
		if err := gr.run(); err != nil {
			t.Fatal(err)
		}
		loss, err := scalarValue(gr.loss.Value())
		if err != nil {
			t.Fatal(err)
		}
		_, sum, _ := scoreRows(gr.logProbs.Value(), set, idx, nil)
		if want := sum / 5; math.Abs(loss-want) > 1e-12 {
			t.Errorf("batch %d: loss %v, want mean cross-entropy %v", batch, loss, want)
		}
		losses[batch] = loss
		gr.Close()
	}
	if losses[5] != losses[8] {
		t.Errorf("padding changed the loss: %v unpadded, %v padded", losses[5], losses[8])
	}
}

func scalarValue(v G.Value) (float64, error) {
	switch d := v.Data().(type) {
	case float64:
		return d, nil
	case []float64:
		if len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, fmt.Errorf("value %v is not a float64 scalar", v)
}
