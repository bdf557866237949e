package model

import (
	"context"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"mnist/data"
)

// Metrics is the result of an evaluation.
type Metrics struct {
	Accuracy float64 // fraction of images whose most likely class is the label
	Loss     float64 // mean cross-entropy per image
	Images   int
	// Confusion counts the images by true label (row) and predicted class
	// (column); its diagonal sum is Accuracy × Images.
	Confusion Confusion
}

// Confusion is a confusion matrix: Confusion[label][predicted] images.
type Confusion [Classes][Classes]int

// Total is the number of images counted.
func (c *Confusion) Total() int {
	var n int
	for _, row := range c {
		for _, v := range row {
			n += v
		}
	}
	return n
}

// Correct is the number of images whose prediction is their label.
func (c *Confusion) Correct() int {
	var n int
	for i := range c {
		n += c[i][i]
	}
	return n
}

// ClassAccuracy returns, per true label, the fraction of its images
// classified right, and how many images had that label. A label with no
// images has accuracy NaN: there is nothing to be right about, and 0 or 1
// would both be a claim.
func (c *Confusion) ClassAccuracy() (acc [Classes]float64, count [Classes]int) {
	for i, row := range c {
		for _, v := range row {
			count[i] += v
		}
		acc[i] = math.NaN()
		if count[i] > 0 {
			acc[i] = float64(row[i]) / float64(count[i])
		}
	}
	return acc, count
}

// Evaluate scores the engine's current parameters on every image of set,
// which it hands the engine as its TestSet, in order, in batches of batch
// images like Keras's evaluate. The last batch may be partial (16 of the
// 10,000 test images at batch 32); only its real rows count. It stops
// between two batches, returning ctx's error, when ctx is cancelled.
func Evaluate(ctx context.Context, engine Engine, set *data.Set, batch int) (Metrics, error) {
	var m Metrics
	var lossSum float64
	var correct int
	err := forwardBatches(ctx, engine, TestSet, set, batch, func(idx []int, logProbs []float64) {
		hits, loss := ScoreLogProbsInto(logProbs, set, idx, &m.Confusion)
		correct += hits
		lossSum += loss
	})
	if err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	n := set.Len()
	m.Accuracy, m.Loss, m.Images = float64(correct)/float64(n), lossSum/float64(n), n
	return m, nil
}

// Predict returns the log-probabilities of every image of set, which it
// hands the engine as its Images, in order: set.Len() rows of Classes. The
// labels of set are not used.
func Predict(ctx context.Context, engine Engine, set *data.Set, batch int) ([]float64, error) {
	out := make([]float64, 0, set.Len()*Classes)
	err := forwardBatches(ctx, engine, Images, set, batch, func(_ []int, logProbs []float64) {
		out = append(out, logProbs...)
	})
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	return out, nil
}

// forwardBatches is the one loop behind Evaluate and Predict: it loads set
// into the engine under id and hands visit each batch's image numbers and
// log-probabilities (valid only during the call).
func forwardBatches(ctx context.Context, engine Engine, id DataID, set *data.Set, batch int, visit func(idx []int, logProbs []float64)) error {
	n := set.Len()
	if n == 0 {
		return fmt.Errorf("the set is empty")
	}
	if batch < 1 {
		return fmt.Errorf("batch size must be >= 1, got %d", batch)
	}
	if err := engine.Load(id, set); err != nil {
		return err
	}
	idx := make([]int, 0, batch)
	logProbs := make([]float64, batch*Classes)
	for lo := 0; lo < n; lo += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		idx = idx[:0]
		for i := lo; i < min(lo+batch, n); i++ {
			idx = append(idx, i)
		}
		rows := logProbs[:len(idx)*Classes]
		if err := engine.Forward(id, idx, rows); err != nil {
			return fmt.Errorf("images %d-%d: %w", lo, lo+len(idx)-1, err)
		}
		visit(idx, rows)
	}
	return nil
}

// scoreRows scores a graph's log-probabilities, of either dtype, with
// ScoreLogProbsInto.
func scoreRows(logProbs G.Value, set *data.Set, idx []int, conf *Confusion) (hits int, loss float64, err error) {
	if logProbs == nil {
		return 0, 0, fmt.Errorf("no log-probabilities computed")
	}
	switch lp := logProbs.Data().(type) {
	case []float32:
		hits, loss = ScoreLogProbsInto(lp, set, idx, conf)
	case []float64:
		hits, loss = ScoreLogProbsInto(lp, set, idx, conf)
	default:
		return 0, 0, fmt.Errorf("log-probabilities are %T, want float32 or float64", lp)
	}
	return hits, loss, nil
}

// ScoreLogProbs scores rows×10 log-probabilities (row r is image idx[r])
// against the labels: how many rows' most likely class is the label, and the
// summed cross-entropy -log p(label). Engines outside this package use it so
// that every device scores the same way.
func ScoreLogProbs[T float32 | float64](lp []T, set *data.Set, idx []int) (hits int, loss float64) {
	return ScoreLogProbsInto(lp, set, idx, nil)
}

// ScoreLogProbsInto is ScoreLogProbs that also counts each row in conf
// (label, most likely class) unless conf is nil. The prediction is the
// first largest log-probability, the same one that counts as a hit, so
// conf's diagonal always agrees with hits.
func ScoreLogProbsInto[T float32 | float64](lp []T, set *data.Set, idx []int, conf *Confusion) (hits int, loss float64) {
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
		if conf != nil {
			conf[label][best]++
		}
		loss -= float64(row[label])
	}
	return hits, loss
}
