package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/sirupsen/logrus"

	"mnist/data"
)

// classProb is one digit and its probability, as in the top-3 list.
type classProb struct {
	Digit       int     `json:"digit"`
	Probability float64 `json:"probability"`
}

// predict classifies o.predictFiles with the loaded model: one line per
// file on stdout in text mode, one "prediction" log entry per file in json
// mode (where stdout stays empty), never both: on a terminal the two would
// say everything twice. Every file is read and checked before any
// prediction, so a bad file fails the run with nothing printed.
func predict(ctx context.Context, o options, loaded *loadedModel, log *logrus.Logger, stdout io.Writer) error {
	set, err := data.LoadImages(ctx, o.predictFiles)
	if err != nil {
		return err
	}
	c, err := openClassifier(o, loaded, log)
	if err != nil {
		return err
	}
	defer c.close()
	logProbs, err := c.classify(ctx, set)
	if err != nil {
		return err
	}
	results := resultLogger(log)
	for i, file := range o.predictFiles {
		top := topClasses(logProbs[i*data.NumClasses:(i+1)*data.NumClasses], 3)
		if o.logFormat == "json" {
			results.WithFields(logrus.Fields{"file": file, "digit": top[0].Digit, "top3": top}).Info("prediction")
		} else {
			fmt.Fprintf(stdout, "%s: %d  (%s)\n", file, top[0].Digit, formatTop(top))
		}
	}
	return nil
}

// topClasses returns the n most probable digits of one row of
// log-probabilities, most probable first; ties go to the lower digit, so the
// first entry is the prediction Evaluate counts (the first most likely).
func topClasses(logProbs []float64, n int) []classProb {
	all := make([]classProb, len(logProbs))
	for d, lp := range logProbs {
		all[d] = classProb{Digit: d, Probability: math.Exp(lp)}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Probability > all[j].Probability })
	return all[:min(n, len(all))]
}

// formatTop writes "7 99.12%, 3 0.51%, 9 0.20%".
func formatTop(top []classProb) string {
	s := ""
	for i, c := range top {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %.2f%%", c.Digit, 100*c.Probability)
	}
	return s
}
