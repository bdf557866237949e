package model

import (
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

// evaluateBatches walks set in order in batches and totals what score
// returns for each: (images classified right, summed cross-entropy), with
// score adding each row to the confusion matrix it is given. Any backend can
// use it.
func evaluateBatches(set *data.Set, batch int, score func(idx []int, conf *Confusion) (int, float64, error)) (Metrics, error) {
	n := set.Len()
	if n == 0 {
		return Metrics{}, fmt.Errorf("evaluate: the set is empty")
	}
	idx := make([]int, 0, batch)
	var m Metrics
	var lossSum float64
	var correct int
	for lo := 0; lo < n; lo += batch {
		idx = idx[:0]
		for i := lo; i < min(lo+batch, n); i++ {
			idx = append(idx, i)
		}
		hits, loss, err := score(idx, &m.Confusion)
		if err != nil {
			return Metrics{}, fmt.Errorf("evaluate images %d-%d: %w", lo, lo+len(idx)-1, err)
		}
		correct += hits
		lossSum += loss
	}
	m.Accuracy, m.Loss, m.Images = float64(correct)/float64(n), lossSum/float64(n), n
	return m, nil
}

// scoreRows compares the log-probabilities of the real rows with their
// labels. It returns the number classified right and the summed
// cross-entropy of those rows, and adds the rows to conf unless it is nil.
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
// summed cross-entropy -log p(label). Backends outside this package use it so
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
