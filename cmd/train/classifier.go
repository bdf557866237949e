package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/sirupsen/logrus"

	"mnist/data"
	"mnist/model"
)

// classifier is the one seam through which -predict and -serve run a
// trained model: images in, log-probabilities out (set.Len() rows of 10).
// The engine behind it is whatever openEngine picks (the GPU in the cuda
// build, the CPU otherwise); only openClassifier knows how it is made.
type classifier interface {
	classify(ctx context.Context, set *data.Set) ([]float64, error)
	// device names where it runs, for logs and the web page.
	device() string
	close()
}

// engineClassifier runs a model.Engine. Engines are not safe for
// concurrent use (the Gorgonia graph and the GPU engine keep one set of
// input and output buffers, and Predict hands each call's images to the
// engine), so calls are serialised by mu: the server's requests decode
// images in parallel and queue only for the forward pass, which for one
// image is short next to decoding it.
type engineClassifier struct {
	mu      sync.Mutex
	name    string
	engine  model.Engine
	batch   int
	release func()
}

// openClassifier opens the device and loads the model's weights into it.
func openClassifier(o options, loaded *loadedModel, log *logrus.Logger) (*engineClassifier, error) {
	dev, engine, release, err := openEngine(o, loaded, log)
	if err != nil {
		return nil, err
	}
	return &engineClassifier{name: dev.Name(), engine: engine, batch: o.cfg.BatchSize, release: release}, nil
}

func (c *engineClassifier) classify(ctx context.Context, set *data.Set) ([]float64, error) {
	c.mu.Lock()
	logProbs, err := model.Predict(ctx, c.engine, set, c.batch)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if len(logProbs) != set.Len()*data.NumClasses {
		return nil, fmt.Errorf("predict: the engine returned %d log-probabilities for %d images", len(logProbs), set.Len())
	}
	return logProbs, nil
}

func (c *engineClassifier) device() string { return c.name }

func (c *engineClassifier) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release()
}
