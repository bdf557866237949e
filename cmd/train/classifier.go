package main

import (
	"fmt"
	"sync"

	"github.com/sirupsen/logrus"

	"mnist/data"
	"mnist/model"
)

// classifier is the one seam through which -predict and -serve run a
// trained model: images in, log-probabilities out (set.Len() rows of 10).
// The engine behind it is whatever openBackend picks (the GPU in the cuda
// build, the CPU otherwise); only openClassifier knows how it is made.
type classifier interface {
	classify(set *data.Set) ([]float64, error)
	// device names where it runs, for logs and the web page.
	device() string
	close()
}

// backendClassifier runs a model.Backend. Backends are not safe for
// concurrent use (the Gorgonia graph and the GPU engine keep one set of
// input and output buffers), so calls are serialised by mu: the server's
// requests decode images in parallel and queue only for the forward pass,
// which for one image is short next to decoding it.
type backendClassifier struct {
	mu      sync.Mutex
	name    string
	backend model.Backend
	release func()
}

// openClassifier opens the device and loads the model's weights into it.
func openClassifier(o options, loaded *loadedModel, log *logrus.Logger) (*backendClassifier, error) {
	dev, backend, release, err := openBackend(o, loaded, log)
	if err != nil {
		return nil, err
	}
	return &backendClassifier{name: dev.Name(), backend: backend, release: release}, nil
}

func (c *backendClassifier) classify(set *data.Set) ([]float64, error) {
	c.mu.Lock()
	logProbs, err := c.backend.Predict(set)
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if len(logProbs) != set.Len()*data.NumClasses {
		return nil, fmt.Errorf("predict: the backend returned %d log-probabilities for %d images", len(logProbs), set.Len())
	}
	return logProbs, nil
}

func (c *backendClassifier) device() string { return c.name }

func (c *backendClassifier) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release()
}
