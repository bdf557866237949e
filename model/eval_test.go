package model

import (
	"context"
	"errors"
	"math"
	"testing"

	"mnist/data"
)

// TestScoreLogProbsIntoCountsRows checks the confusion matrix cell by cell
// on hand-made rows, including a tie (the first largest class wins, as it
// does for hits) and a nil matrix (hits and loss only).
func TestScoreLogProbsIntoCountsRows(t *testing.T) {
	// row returns log-probabilities with the given class most likely.
	row := func(best int, tieWith int) []float64 {
		r := make([]float64, Classes)
		for c := range r {
			r[c] = -5
		}
		r[best] = -0.1
		if tieWith >= 0 {
			r[tieWith] = -0.1
		}
		return r
	}
	cases := []struct {
		name    string
		labels  []byte
		rows    [][]float64
		wantHit int
		cells   map[[2]int]int // [label, predicted] -> count; all others 0
		nilConf bool
	}{
		{"all right", []byte{0, 1, 9}, [][]float64{row(0, -1), row(1, -1), row(9, -1)}, 3,
			map[[2]int]int{{0, 0}: 1, {1, 1}: 1, {9, 9}: 1}, false},
		{"all wrong", []byte{3, 3}, [][]float64{row(5, -1), row(8, -1)}, 0,
			map[[2]int]int{{3, 5}: 1, {3, 8}: 1}, false},
		// Classes 2 and 7 tie in both rows: 2 comes first, so label 7's
		// row is a miss predicted as 2 and label 2's row a hit.
		{"tie goes to the first class", []byte{7, 2}, [][]float64{row(7, 2), row(7, 2)}, 1,
			map[[2]int]int{{7, 2}: 1, {2, 2}: 1}, false},
		{"nil matrix", []byte{4}, [][]float64{row(4, -1)}, 1, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := &data.Set{Labels: tc.labels}
			var lp []float64
			idx := make([]int, len(tc.rows))
			wantLoss := 0.0
			for i, r := range tc.rows {
				lp = append(lp, r...)
				idx[i] = i
				wantLoss -= r[tc.labels[i]]
			}
			var conf *Confusion
			if !tc.nilConf {
				conf = new(Confusion)
			}
			hits, loss := ScoreLogProbsInto(lp, set, idx, conf)
			if hits != tc.wantHit || loss != wantLoss {
				t.Errorf("hits %d loss %v, want %d and %v", hits, loss, tc.wantHit, wantLoss)
			}
			if h, l := ScoreLogProbs(lp, set, idx); h != hits || l != loss {
				t.Errorf("ScoreLogProbs gives %d %v, ScoreLogProbsInto %d %v", h, l, hits, loss)
			}
			if conf == nil {
				return
			}
			for i := range conf {
				for j, got := range conf[i] {
					if want := tc.cells[[2]int{i, j}]; got != want {
						t.Errorf("confusion[%d][%d] = %d, want %d", i, j, got, want)
					}
				}
			}
			if conf.Correct() != hits || conf.Total() != len(idx) {
				t.Errorf("matrix has %d right of %d, want %d of %d", conf.Correct(), conf.Total(), hits, len(idx))
			}
		})
	}
}

func TestClassAccuracy(t *testing.T) {
	var c Confusion
	c[0][0], c[0][6] = 3, 1 // class 0: 3 of 4 right
	c[5][5] = 2             // class 5: all right
	c[9][4] = 1             // class 9: all wrong
	acc, count := c.ClassAccuracy()
	cases := []struct {
		class int
		acc   float64 // NaN: no images of the class
		count int
	}{
		{0, 0.75, 4}, {5, 1, 2}, {9, 0, 1}, {1, math.NaN(), 0},
	}
	for _, tc := range cases {
		if count[tc.class] != tc.count {
			t.Errorf("class %d: count %d, want %d", tc.class, count[tc.class], tc.count)
		}
		if got := acc[tc.class]; !(got == tc.acc || math.IsNaN(got) && math.IsNaN(tc.acc)) {
			t.Errorf("class %d: accuracy %v, want %v", tc.class, got, tc.acc)
		}
	}
}

// TestEvaluateConfusion: on a small learnable set, untrained (many wrong
// answers off the diagonal) and trained, the graph backend's confusion
// matrix counts every image once, by its true label, and its diagonal is
// exactly the accuracy. 203 images at batch 32 end in a partial batch,
// whose padding rows must not be counted.
func TestEvaluateConfusion(t *testing.T) {
	test := syntheticSet(203, 2)
	var labels [Classes]int
	for _, l := range test.Labels {
		labels[l]++
	}
	for _, epochs := range []int{0, 1} {
		cfg := shortConfig()
		cfg.Epochs = epochs
		tr, b := newTestTrainer(t, cfg, syntheticSet(400, 1))
		if _, err := tr.Fit(context.Background(), Hooks{}); err != nil {
			t.Fatal(err)
		}
		m, err := Evaluate(context.Background(), b, test, cfg.BatchSize)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Confusion.Total(); got != m.Images || got != test.Len() {
			t.Errorf("%d epochs: confusion matrix counts %d images, evaluated %d of %d", epochs, got, m.Images, test.Len())
		}
		if got := float64(m.Confusion.Correct()) / float64(m.Images); got != m.Accuracy {
			t.Errorf("%d epochs: diagonal / images = %v, accuracy %v", epochs, got, m.Accuracy)
		}
		_, count := m.Confusion.ClassAccuracy()
		if count != labels {
			t.Errorf("%d epochs: row sums %v, want the label counts %v", epochs, count, labels)
		}
		t.Logf("%d epochs: accuracy %.4f, %d off the diagonal", epochs, m.Accuracy, m.Images-m.Confusion.Correct())
	}
}

// TestPredictMatchesEvaluate: Predict's log-probabilities, scored, give
// exactly Evaluate's metrics, for a set whose last batch is partial.
func TestPredictMatchesEvaluate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize = 16
	b := newTestEngine(t, cfg, WithPrunedProgram())
	set := syntheticSet(100, 8)
	want, err := Evaluate(context.Background(), b, set, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := Predict(context.Background(), b, set, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(lp) != set.Len()*Classes {
		t.Fatalf("Predict returned %d values, want %d", len(lp), set.Len()*Classes)
	}
	idx := make([]int, set.Len())
	for i := range idx {
		idx[i] = i
	}
	var got Metrics
	hits, loss := ScoreLogProbsInto(lp, set, idx, &got.Confusion)
	got.Accuracy, got.Loss, got.Images = float64(hits)/float64(set.Len()), loss/float64(set.Len()), set.Len()
	if got.Confusion != want.Confusion || got.Accuracy != want.Accuracy || math.Abs(got.Loss-want.Loss) > 1e-12 {
		t.Errorf("scoring Predict's output gives %+v, Evaluate gave %+v", got, want)
	}
}

// TestEvaluateStopsWhenCancelled: a cancelled context stops the evaluation
// between batches with the context's error, so Ctrl-C is not ignored while
// the test set is scored.
func TestEvaluateStopsWhenCancelled(t *testing.T) {
	cfg := DefaultConfig()
	e := newTestEngine(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, e, syntheticSet(100, 8), cfg.BatchSize); !errors.Is(err, context.Canceled) {
		t.Errorf("Evaluate with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := Predict(ctx, e, syntheticSet(10, 8), cfg.BatchSize); !errors.Is(err, context.Canceled) {
		t.Errorf("Predict with a cancelled context = %v, want context.Canceled", err)
	}
}
