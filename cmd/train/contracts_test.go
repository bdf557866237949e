//go:build unix

package main

import (
	"bufio"
	byteorder "encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests of this file pin what scripts and users rely on: the exit
// codes, the JSON field names of the log and of -metrics-out, and the
// tensors of the files -save and -checkpoint-dir write. Each expectation
// is written out here as a literal, never taken from the code under test:
// renaming a field or renumbering an exit code must fail a test.

// TestContractExitCodes: 0 success, 1 runtime error, 2 usage error, 130
// interrupted, as -h and the README say.
func TestContractExitCodes(t *testing.T) {
	dir := realDataDir(t)
	tmp := t.TempDir()
	garbage := filepath.Join(tmp, "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"download only", []string{"-data-dir", dir, "-download-only"}, 0},
		{"bad model file", []string{"-data-dir", dir, "-epochs", "0", "-load", garbage}, 1},
		{"missing model file", []string{"-data-dir", dir, "-epochs", "0", "-load", filepath.Join(tmp, "none")}, 1},
		{"negative epochs", []string{"-epochs", "-1"}, 2},
		{"unknown flag", []string{"-no-such-flag"}, 2},
		{"extra argument", []string{"stray"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runTrain(t, tt.args...)
			if code != tt.want {
				t.Errorf("train %v: exit %d, want %d\n%s", tt.args, code, tt.want, stderr)
			}
		})
	}
	t.Run("interrupted", func(t *testing.T) {
		code, _, stderr := interruptTrain(t, syscall.SIGINT, 300*time.Millisecond, "-data-dir", dir, "-epochs", "20")
		if code != 130 {
			t.Errorf("SIGINT: exit %d, want 130\n%s", code, stderr)
		}
	})
}

// TestContractOutputNames runs one short epoch with every output on and
// checks the names in each: the JSON log's epoch and evaluation entries,
// the -metrics-out document, the -save model file and the checkpoint.
func TestContractOutputNames(t *testing.T) {
	t.Parallel()
	dir := realDataDir(t)
	out := t.TempDir()
	metrics, saved, ckdir := filepath.Join(out, "m.json"), filepath.Join(out, "m.safetensors"), filepath.Join(out, "ck")
	code, _, logs := runTrain(t, "-data-dir", dir, "-epochs", "1", "-batch-size", "600", "-log-format", "json",
		"-metrics-out", metrics, "-save", saved, "-checkpoint-dir", ckdir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, logs)
	}

	t.Run("log", func(t *testing.T) {
		entries := map[string]map[string]any{}
		sc := bufio.NewScanner(strings.NewReader(logs))
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				msg, _ := e["msg"].(string)
				entries[msg] = e
			}
		}
		assertKeys(t, "epoch entry", entries["epoch 1/1"],
			"level", "msg", "time", "epoch", "train_loss", "train_accuracy", "seconds")
		assertKeys(t, "evaluation entry", entries["evaluation"],
			"level", "msg", "time", "test_accuracy", "test_loss", "test_images", "train_seconds",
			"samples_per_second", "epochs", "batch_size", "optimizer", "lr", "seed", "device", "test_class_accuracy")
	})

	t.Run("metrics file", func(t *testing.T) {
		b, err := os.ReadFile(metrics)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Flags  map[string]any   `json:"flags"`
			Epochs []map[string]any `json:"epochs"`
			Test   map[string]any   `json:"test"`
		}
		var top map[string]any
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		assertKeys(t, "metrics file", top, "interrupted", "device", "architecture", "flags", "epochs", "train_seconds", "test")
		assertKeys(t, "flags", doc.Flags, "epochs", "batch_size", "optimizer", "optimizer_settings", "seed", "data_dir", "gpu", "engine")
		settings, _ := doc.Flags["optimizer_settings"].(map[string]any)
		assertKeys(t, "flags.optimizer_settings (adam)", settings, "lr", "beta1", "beta2", "epsilon")
		if len(doc.Epochs) != 1 {
			t.Fatalf("%d epochs in the metrics file, want 1", len(doc.Epochs))
		}
		assertKeys(t, "epochs[0]", doc.Epochs[0], "epoch", "train_loss", "train_accuracy", "seconds")
		assertKeys(t, "test", doc.Test, "loss", "accuracy", "images", "confusion_matrix", "class_accuracy", "class_images")
	})

	t.Run("model file", func(t *testing.T) {
		tensors, meta := readSafetensorsHeader(t, saved)
		want := map[string]tensorHeader{
			"dense1.weight": {"F32", []int{784, 128}, 401408},
			"dense1.bias":   {"F32", []int{128}, 512},
			"dense2.weight": {"F32", []int{128, 64}, 32768},
			"dense2.bias":   {"F32", []int{64}, 256},
			"dense3.weight": {"F32", []int{64, 10}, 2560},
			"dense3.bias":   {"F32", []int{10}, 40},
		}
		assertTensors(t, tensors, want)
		assertKeys(t, "model __metadata__", toAny(meta), "architecture", "epochs", "batch_size", "optimizer", "seed",
			"test_accuracy", "test_loss", "test_images", "test_confusion", "device", "version", "lr", "beta1", "beta2", "epsilon")
		if info, err := os.Stat(saved); err != nil || info.Size() < 437544+8 {
			t.Errorf("model file: %v, %v; want at least 437,544 bytes of parameters after the header", info, err)
		}
	})

	t.Run("checkpoint", func(t *testing.T) {
		entries, err := os.ReadDir(ckdir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if err != nil || strings.Join(names, " ") != ".checkpoint.lock checkpoint-e000001-s0000000.safetensors" {
			t.Fatalf("checkpoint folder holds %v (%v), want .checkpoint.lock and checkpoint-e000001-s0000000.safetensors", names, err)
		}
		tensors, meta := readSafetensorsHeader(t, filepath.Join(ckdir, "checkpoint-e000001-s0000000.safetensors"))
		want := map[string]tensorHeader{"shuffle.order": {"I64", []int{60000}, 480000}}
		for _, p := range []struct {
			name  string
			shape []int
		}{
			{"dense1.weight", []int{784, 128}}, {"dense1.bias", []int{128}},
			{"dense2.weight", []int{128, 64}}, {"dense2.bias", []int{64}},
			{"dense3.weight", []int{64, 10}}, {"dense3.bias", []int{10}},
		} {
			n := 1
			for _, d := range p.shape {
				n *= d
			}
			want[p.name] = tensorHeader{"F32", p.shape, 4 * n}
			want["adam.m."+p.name] = tensorHeader{"F64", p.shape, 8 * n}
			want["adam.v."+p.name] = tensorHeader{"F64", p.shape, 8 * n}
		}
		assertTensors(t, tensors, want)
		assertKeys(t, "checkpoint __metadata__", toAny(meta), "format", "architecture", "epoch", "step", "loss_sum",
			"correct", "seen", "shuffle", "seed", "batch_size", "dtype", "optimizer", "optimizer_step",
			"optimizer.lr", "optimizer.beta1", "optimizer.beta2", "optimizer.epsilon", "target_epochs", "checksum")
		for k, v := range map[string]string{"format": "mnist-checkpoint/2", "optimizer": "adam", "epoch": "1", "step": "0", "target_epochs": "1",
			"batch_size": "600", "dtype": "float32", "optimizer_step": "100"} {
			if meta[k] != v {
				t.Errorf("checkpoint metadata %q = %q, want %q", k, meta[k], v)
			}
		}
	})
}

// tensorHeader is a header entry as the contract states it: dtype, shape
// and the number of bytes its data_offsets span.
type tensorHeader struct {
	dtype string
	shape []int
	bytes int
}

// readSafetensorsHeader parses a safetensors file by the format alone,
// nothing from the program: the 8-byte little-endian length, the JSON
// header, and checks that the offsets tile the data to the file's end.
func readSafetensorsHeader(t *testing.T, path string) (map[string]tensorHeader, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 {
		t.Fatalf("%s: %d bytes", path, len(b))
	}
	n := byteorder.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) || (8+n)%8 != 0 {
		t.Fatalf("%s: header length %d in a %d-byte file (the data must start in it, 8-byte aligned)", path, n, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	var meta map[string]string
	if err := json.Unmarshal(raw["__metadata__"], &meta); err != nil {
		t.Fatalf("%s: __metadata__: %v", path, err)
	}
	delete(raw, "__metadata__")
	out := map[string]tensorHeader{}
	var spans [][2]int
	for name, r := range raw {
		var e struct {
			Dtype       string `json:"dtype"`
			Shape       []int  `json:"shape"`
			DataOffsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(r, &e); err != nil {
			t.Fatalf("%s: tensor %q: %v", path, name, err)
		}
		out[name] = tensorHeader{e.Dtype, e.Shape, e.DataOffsets[1] - e.DataOffsets[0]}
		spans = append(spans, e.DataOffsets)
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	pos := 0
	for _, s := range spans {
		if s[0] != pos {
			t.Fatalf("%s: a tensor starts at %d, want %d", path, s[0], pos)
		}
		pos = s[1]
	}
	if pos != len(b)-8-int(n) {
		t.Fatalf("%s: tensors cover %d bytes of %d", path, pos, len(b)-8-int(n))
	}
	return out, meta
}

func assertTensors(t *testing.T, got, want map[string]tensorHeader) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("tensor %q missing", name)
			continue
		}
		if g.dtype != w.dtype || !slices.Equal(g.shape, w.shape) || g.bytes != w.bytes {
			t.Errorf("tensor %q: %s %v, %d bytes; want %s %v, %d bytes", name, g.dtype, g.shape, g.bytes, w.dtype, w.shape, w.bytes)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected tensor %q", name)
		}
	}
}

// assertKeys checks that m has exactly the keys named.
func assertKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	if m == nil {
		t.Errorf("%s: missing", what)
		return
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q", what, k)
		}
	}
	for k := range m {
		if !slices.Contains(keys, k) {
			t.Errorf("%s has %q, not in the contract", what, k)
		}
	}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
