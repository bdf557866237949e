package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"mnist/data"
)

// Metrics is the result of an evaluation.
type Metrics struct {
	Accuracy float64 // fraction of images whose most likely class is the label
	Loss     float64 // mean cross-entropy per image
	Images   int
}

// evaluateBatches walks set in order in batches and totals what score
// returns for each: (images classified right, summed cross-entropy). Any
// backend can use it.
func evaluateBatches(set *data.Set, batch int, score func(idx []int) (int, float64, error)) (Metrics, error) {
	n := set.Len()
	if n == 0 {
		return Metrics{}, fmt.Errorf("evaluate: the set is empty")
	}
	idx := make([]int, 0, batch)
	var lossSum float64
	var correct int
	for lo := 0; lo < n; lo += batch {
		idx = idx[:0]
		for i := lo; i < min(lo+batch, n); i++ {
			idx = append(idx, i)
		}
		hits, loss, err := score(idx)
		if err != nil {
			return Metrics{}, fmt.Errorf("evaluate images %d-%d: %w", lo, lo+len(idx)-1, err)
		}
		correct += hits
		lossSum += loss
	}
	return Metrics{Accuracy: float64(correct) / float64(n), Loss: lossSum / float64(n), Images: n}, nil
}

// scoreRows compares the log-probabilities of the real rows with their
// labels. It returns the number classified right and the summed
// cross-entropy of those rows.
func scoreRows(logProbs G.Value, set *data.Set, idx []int) (hits int, loss float64, err error) {
	if logProbs == nil {
		return 0, 0, fmt.Errorf("no log-probabilities computed")
	}
	switch lp := logProbs.Data().(type) {
	case []float32:
		hits, loss = ScoreLogProbs(lp, set, idx)
	case []float64:
		hits, loss = ScoreLogProbs(lp, set, idx)
	default:
		return 0, 0, fmt.Errorf("log-probabilities are %T, want float32 or float64", lp)
	}
	return hits, loss, nil
}

// ScoreLogProbs scores rows×10 log-probabilities (row r is image idx[r])
// against the labels: how many rows' most likely class is the label, and the
// summed cross-entropy -log p(label). Backends outside this package use it so
// that every device scores the same way.
func ScoreLogProbs[T float32 | float64](lp []T, set *data.Set, idx []int) (hits int, loss float64) {
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
