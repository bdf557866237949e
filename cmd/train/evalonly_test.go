package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"mnist/model"
)

// TestEvaluationNamesTheModelsTraining: -load FILE -epochs 0 reports the
// optimizer, learning rate and seed that trained the file's weights, read
// from its metadata, not the flags' defaults, which trained nothing; a
// file that does not say reports none. The metrics file's flags hold none
// (the run took no training flags), and a -save of the evaluation passes
// on what the file said, epochs included.
func TestEvaluationNamesTheModelsTraining(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	sgd := map[string]string{"optimizer": "sgd", "lr": "0.01", "momentum": "0.9", "seed": "7", "batch_size": "64", "epochs": "3"}
	cases := []struct {
		name string
		meta map[string]string
		// want are the evaluation entry's optimizer, lr and seed, nil
		// where the entry must not have the field.
		want []any
		// setup is the text report's setup line up to the device, which
		// the cuda build names differently; unknown is what follows it.
		setup, unknown string
	}{
		{"sgd model", sgd, []any{"sgd", 0.01, 7.0}, "setup     batch 64, sgd lr 0.01, seed 7, device ", ""},
		{"no metadata", nil, []any{nil, nil, nil}, "setup     batch 32, device ", " (training settings not in the model file)\n"},
		{"seed missing", without(sgd, "seed"), []any{nil, nil, nil}, "setup     batch 64, device ", " (training settings not in the model file)\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "m.safetensors")
			writeModelFile(t, file, c.meta)

			metricsOut := filepath.Join(t.TempDir(), "m.json")
			code, _, stderr := runInProcess("-data-dir", dataDir, "-load", file, "-epochs", "0", "-log-format", "json", "-metrics-out", metricsOut)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			e := evaluationEntry(t, stderr)
			var doc struct{ Flags map[string]any }
			if b, err := os.ReadFile(metricsOut); err != nil || json.Unmarshal(b, &doc) != nil {
				t.Fatalf("read %s: %v:\n%s", metricsOut, err, b)
			}
			for i, field := range []string{"optimizer", "lr", "seed"} {
				if v, ok := e[field]; c.want[i] == nil && ok || c.want[i] != nil && v != c.want[i] {
					t.Errorf("evaluation entry: %s = %v, want %v", field, v, c.want[i])
				}
			}
			for _, field := range []string{"optimizer", "optimizer_settings", "seed"} {
				if v, ok := doc.Flags[field]; ok {
					t.Errorf("metrics file's flags: %s = %v, want none", field, v)
				}
			}
			if doc.Flags["epochs"] != 0.0 {
				t.Errorf("metrics file's flags: epochs = %v, want 0", doc.Flags["epochs"])
			}

			// The text report, and a copy saved by the evaluation, which
			// passes on how the model was trained when the file said, and
			// claims nothing when it did not.
			saved := filepath.Join(t.TempDir(), "copy.safetensors")
			code, stdout, stderr := runInProcess("-data-dir", dataDir, "-load", file, "-epochs", "0", "-save", saved)
			if code != exitOK || !strings.Contains(stdout, c.setup) || strings.Contains(stdout, "not in the model file") != (c.unknown != "") || !strings.Contains(stdout, c.unknown) {
				t.Errorf("text report (exit %d) lacks %q or says the settings are unknown wrongly:\n%s\n%s", code, c.setup+"…"+c.unknown, stdout, stderr)
			}
			_, meta, err := model.LoadSafetensors(context.Background(), saved)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"optimizer", "lr", "seed", "epochs"} {
				want, known := c.meta[k], c.want[0] != nil
				if v, ok := meta[k]; !known && ok {
					t.Errorf("saved copy's metadata %s = %q, want none", k, v)
				} else if known && v != want {
					t.Errorf("saved copy's metadata %s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

func TestTrainedWith(t *testing.T) {
	adam := map[string]string{"optimizer": "adam", "lr": "0.001", "beta1": "0.9", "beta2": "0.999", "epsilon": "1e-07", "seed": "1"}
	sgd := map[string]string{"optimizer": "sgd", "lr": "0.01", "momentum": "0.9", "seed": "7"}
	tunedSGD := model.DefaultConfig().Optimizer
	tunedSGD.Name, tunedSGD.LearningRate = "sgd", 0.01
	cases := []struct {
		name     string
		meta     map[string]string
		wantOK   bool
		wantOpt  model.OptimizerConfig
		wantSeed uint64
	}{
		{"adam", adam, true, model.DefaultConfig().Optimizer, 1},
		{"sgd", sgd, true, tunedSGD, 7},
		{"no optimizer, Adam's settings (older files)", without(adam, "optimizer"), true, model.DefaultConfig().Optimizer, 1},
		{"no optimizer", without(sgd, "optimizer"), false, model.OptimizerConfig{}, 0},
		{"unknown optimizer", with(adam, "optimizer", "rmsprop"), false, model.OptimizerConfig{}, 0},
		{"setting missing", without(adam, "beta2"), false, model.OptimizerConfig{}, 0},
		{"setting not a number", with(sgd, "lr", "fast"), false, model.OptimizerConfig{}, 0},
		{"setting no run uses", with(sgd, "lr", "0"), false, model.OptimizerConfig{}, 0},
		{"seed missing", without(sgd, "seed"), false, model.OptimizerConfig{}, 0},
		{"seed negative", with(sgd, "seed", "-1"), false, model.OptimizerConfig{}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt, seed, ok := trainedWith(c.meta)
			if ok != c.wantOK || ok && (opt != c.wantOpt || seed != c.wantSeed) {
				t.Errorf("trainedWith = %+v, %d, %v; want %+v, %d, %v", opt, seed, ok, c.wantOpt, c.wantSeed, c.wantOK)
			}
		})
	}
}

// writeModelFile writes seeded initial weights with meta as the file's
// metadata: evaluating them needs no training.
func writeModelFile(t *testing.T, path string, meta map[string]string) {
	t.Helper()
	p, err := model.NewParams(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := model.EncodeSafetensors(f, p, meta); err != nil {
		t.Fatal(err)
	}
}

// with is a copy of m with key set to value; without, with key removed.
func with(m map[string]string, key, value string) map[string]string {
	c := maps.Clone(m)
	c[key] = value
	return c
}

func without(m map[string]string, key string) map[string]string {
	c := maps.Clone(m)
	delete(c, key)
	return c
}
