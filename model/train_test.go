package model

import (
	"context"
	"errors"
	"testing"

	"gorgonia.org/tensor"
)

func shortConfig() Config {
	c := DefaultConfig()
	c.Epochs = 2
	c.Seed = 42
	return c
}

// newTestTrainer makes a trainer over the CPU graph backend, closed when the
// test ends.
func newTestTrainer(t *testing.T, cfg Config) (*Trainer, Backend) {
	t.Helper()
	b, err := NewGraphBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tr, err := NewTrainer(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	return tr, b
}

func trainAndEvaluate(t *testing.T, cfg Config, trainN, testN int) ([]EpochStats, Metrics) {
	t.Helper()
	tr, b := newTestTrainer(t, cfg)
	history, err := tr.Fit(context.Background(), syntheticSet(trainN, 1), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.Evaluate(syntheticSet(testN, 2))
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
	tr, _ := newTestTrainer(t, shortConfig())
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	_, err := tr.Fit(ctx, syntheticSet(320, 1), Hooks{Step: func(StepStats) {
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
	cfg.LearningRate = 1e12
	tr, _ := newTestTrainer(t, cfg)
	_, err := tr.Fit(context.Background(), syntheticSet(640, 1), Hooks{})
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
		{"zero lr", func(c *Config) { c.LearningRate = 0 }, false},
		{"negative lr", func(c *Config) { c.LearningRate = -1 }, false},
		{"NaN lr", func(c *Config) { c.LearningRate = nan() }, false},
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
