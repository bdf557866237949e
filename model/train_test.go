package model

import (
	"context"
	"errors"
	"testing"

	"gorgonia.org/tensor"

	"mnist/data"
)

func shortConfig() Config {
	c := DefaultConfig()
	c.Epochs = 2
	c.Seed = 42
	return c
}

// newTestEngine makes the CPU graph engine, closed when the test ends.
func newTestEngine(t testing.TB, cfg Config, opts ...GraphOption) Engine {
	t.Helper()
	e, err := NewGraphEngine(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// newTestTrainer makes a trainer over the CPU graph engine on train.
func newTestTrainer(t *testing.T, cfg Config, train *data.Set) (*Trainer, Engine) {
	t.Helper()
	e := newTestEngine(t, cfg)
	tr, err := NewTrainer(cfg, e, train)
	if err != nil {
		t.Fatal(err)
	}
	return tr, e
}

func trainAndEvaluate(t *testing.T, cfg Config, trainN, testN int) ([]EpochStats, Metrics) {
	t.Helper()
	tr, e := newTestTrainer(t, cfg, syntheticSet(trainN, 1))
	history, err := tr.Fit(context.Background(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Evaluate(context.Background(), e, syntheticSet(testN, 2), cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	return history, m
}

// TestShortTrainingLearns trains 2 epochs on 1,000 synthetic images (the
// last batch partial) and expects the held-out set to be learnt.
func TestShortTrainingLearns(t *testing.T) {
	history, m := trainAndEvaluate(t, shortConfig(), 1000, 500)
	if len(history) != 2 {
		t.Fatalf("got %d epochs of history, want 2", len(history))
	}
	if history[1].Loss >= history[0].Loss {
		t.Errorf("training loss did not fall: %v then %v", history[0].Loss, history[1].Loss)
	}
	if m.Images != 500 {
		t.Errorf("evaluated %d images, want 500", m.Images)
	}
	if m.Accuracy < 0.95 {
		t.Errorf("test accuracy %.4f after 2 epochs, want >= 0.95", m.Accuracy)
	}
}

// TestSameSeedSameResult: two runs with one seed agree to the bit; another
// seed gives another result.
func TestSameSeedSameResult(t *testing.T) {
	cfg := shortConfig()
	cfg.Epochs = 1
	_, a := trainAndEvaluate(t, cfg, 400, 200)
	_, b := trainAndEvaluate(t, cfg, 400, 200)
	if a != b {
		t.Errorf("same seed, different results: %+v vs %+v", a, b)
	}
	cfg.Seed++
	_, c := trainAndEvaluate(t, cfg, 400, 200)
	if c.Loss == a.Loss {
		t.Errorf("different seeds gave the same loss %v", a.Loss)
	}
}

func TestFitStopsWhenCancelled(t *testing.T) {
	tr, _ := newTestTrainer(t, shortConfig(), syntheticSet(320, 1))
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	_, err := tr.Fit(ctx, Hooks{Step: func(StepStats) {
		if steps++; steps == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || steps != 3 {
		t.Fatalf("Fit after cancel: err %v after %d steps, want context.Canceled after 3", err, steps)
	}
	if got := tr.Trained(); got != 3*shortConfig().BatchSize {
		t.Errorf("Trained() = %d after 3 steps, want %d", got, 3*shortConfig().BatchSize)
	}
}

func TestDivergenceIsAnError(t *testing.T) {
	cfg := shortConfig()
	cfg.Optimizer.LearningRate = 1e12
	tr, _ := newTestTrainer(t, cfg, syntheticSet(640, 1))
	_, err := tr.Fit(context.Background(), Hooks{})
	if err == nil {
		t.Fatal("training with lr 1e12 succeeded; want a divergence error")
	}
	t.Log(err)
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"zero epochs evaluate only", func(c *Config) { c.Epochs = 0 }, true},
		{"negative epochs", func(c *Config) { c.Epochs = -1 }, false},
		{"zero batch", func(c *Config) { c.BatchSize = 0 }, false},
		{"zero lr", func(c *Config) { c.Optimizer.LearningRate = 0 }, false},
		{"negative lr", func(c *Config) { c.Optimizer.LearningRate = -1 }, false},
		{"NaN lr", func(c *Config) { c.Optimizer.LearningRate = nan() }, false},
		{"beta1 1", func(c *Config) { c.Optimizer.Beta1 = 1 }, false},
		{"beta2 negative", func(c *Config) { c.Optimizer.Beta2 = -0.1 }, false},
		{"zero epsilon", func(c *Config) { c.Optimizer.Epsilon = 0 }, false},
		{"unknown optimizer", func(c *Config) { c.Optimizer.Name = "rmsprop" }, false},
		{"sgd", func(c *Config) { c.Optimizer.Name = "sgd" }, true},
		{"sgd ignores Adam's settings", func(c *Config) { c.Optimizer.Name, c.Optimizer.Beta1 = "sgd", 7 }, true},
		{"sgd momentum 1", func(c *Config) { c.Optimizer.Name, c.Optimizer.Momentum = "sgd", 1 }, false},
		{"sgd negative momentum", func(c *Config) { c.Optimizer.Name, c.Optimizer.Momentum = "sgd", -0.5 }, false},
		{"int dtype", func(c *Config) { c.Dtype = tensor.Int }, false},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.edit(&c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func nan() float64 { var z float64; return z / z }
