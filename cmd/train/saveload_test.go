//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"mnist/model"
)

// TestSaveLoadReproduces trains one short epoch with -save, then evaluates
// the file with -load -epochs 0: the test accuracy and loss must be the
// saved run's exactly (same weights, same batch size, CPU). Training more
// from the loaded weights must work too.
func TestSaveLoadReproduces(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	dir := t.TempDir()
	saved := filepath.Join(dir, "mnist.safetensors")

	code, _, stderr := runTrain(t, "-data-dir", dataDir, "-epochs", "1", "-batch-size", "64", "-save", saved, "-log-format", "json")
	if code != exitOK {
		t.Fatalf("train -save exited %d:\n%s", code, stderr)
	}
	trained := evaluationEntry(t, stderr)
	assertDirHolds(t, dir, "mnist.safetensors") // no temporary file left

	_, meta, err := model.LoadSafetensors(context.Background(), saved)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"architecture", "epochs", "batch_size", "optimizer", "lr", "beta1", "beta2", "epsilon", "seed", "test_accuracy", "test_loss", "version"} {
		if meta[k] == "" {
			t.Errorf("metadata lacks %q: %v", k, meta)
		}
	}
	if meta["architecture"] != model.Architecture || meta["batch_size"] != "64" || meta["epochs"] != "1" || meta["seed"] != "1" {
		t.Errorf("metadata does not describe the run: %v", meta)
	}
	if loss, _ := strconv.ParseFloat(meta["test_loss"], 64); loss != trained["test_loss"] {
		t.Errorf("metadata test_loss %s, the run reported %v", meta["test_loss"], trained["test_loss"])
	}

	// No -batch-size: the saved model's 64 is used, as exact results need.
	code, _, stderr = runTrain(t, "-data-dir", dataDir, "-load", saved, "-epochs", "0", "-log-format", "json")
	if code != exitOK {
		t.Fatalf("train -load -epochs 0 exited %d:\n%s", code, stderr)
	}
	evaluated := evaluationEntry(t, stderr)
	if !strings.Contains(stderr, `"msg":"evaluating"`) || strings.Contains(stderr, `"msg":"training"`) {
		t.Errorf("-epochs 0 should announce an evaluation, not training:\n%s", stderr)
	}
	for _, k := range []string{"test_accuracy", "test_loss", "test_images"} {
		if evaluated[k] != trained[k] {
			t.Errorf("%s: loaded model gives %v, the saved run %v", k, evaluated[k], trained[k])
		}
	}
	if evaluated["epochs"] != 0.0 || evaluated["batch_size"] != 64.0 {
		t.Errorf("evaluation entry %v, want epochs 0 at the saved batch size 64", evaluated)
	}

	// The text report of the same evaluation.
	code, stdout, stderr := runTrain(t, "-data-dir", dataDir, "-load", saved, "-epochs", "0")
	if want := "accuracy  " + strconv.FormatFloat(100*trained["test_accuracy"].(float64), 'f', 2, 64) + "%"; code != exitOK || !strings.Contains(stdout, want) {
		t.Errorf("text report (exit %d) lacks %q:\n%s\n%s", code, want, stdout, stderr)
	}

	// Fine-tuning: one more epoch from the loaded weights, saved again.
	tuned := filepath.Join(dir, "tuned.safetensors")
	code, _, stderr = runTrain(t, "-data-dir", dataDir, "-load", saved, "-epochs", "1", "-save", tuned, "-log-format", "json")
	if code != exitOK {
		t.Fatalf("train -load -epochs 1 exited %d:\n%s", code, stderr)
	}
	e := evaluationEntry(t, stderr)
	if acc := e["test_accuracy"].(float64); acc < trained["test_accuracy"].(float64)-0.01 {
		t.Errorf("fine-tuned accuracy %v fell well below the loaded model's %v", acc, trained["test_accuracy"])
	}
	_, meta, err = model.LoadSafetensors(context.Background(), tuned)
	if err != nil {
		t.Fatal(err)
	}
	if meta["initial_weights"] != saved {
		t.Errorf("fine-tuned metadata initial_weights %q, want %q", meta["initial_weights"], saved)
	}
}

// goodModelFile writes a valid model file (seeded initial weights, no
// training needed) for the broken-file tests to spoil.
func goodModelFile(t *testing.T) []byte {
	t.Helper()
	p, err := model.NewParams(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := model.EncodeSafetensors(&buf, p, map[string]string{"batch_size": "64"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBadModelFilesExit1 runs -load on spoiled files: each must exit 1
// with one stderr line naming the file and the problem, before any data is
// loaded or any training is done.
func TestBadModelFilesExit1(t *testing.T) {
	good := goodModelFile(t)
	swap := func(old, new string) []byte {
		if len(old) != len(new) || !bytes.Contains(good, []byte(old)) {
			t.Fatalf("cannot swap %q for %q", old, new)
		}
		// Same length, so the header length and offsets stay right.
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"dtype F64", `tensor "dense1.bias" has dtype "F64", want "F32"`, swap(`"F32"`, `"F64"`)},
		{"wrong name", `unexpected tensor "dense1.kernel"`, swap("dense1.weight", "dense1.kernel")},
		{"wrong shape", `tensor "dense1.weight" has shape [128 784], want [784 128]`, swap("[784,128]", "[128,784]")},
		{"header not JSON", "header is not a JSON object", swap("{", "x")},
		{"truncated body", "body truncated", good[:len(good)-1000]},
		{"empty file", "too short for the 8-byte header length", []byte{}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".safetensors")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			// A data folder that does not exist: the file must be refused
			// before the data is looked for.
			code, stdout, stderr := runTrain(t, "-data-dir", filepath.Join(dir, "no-data"), "-load", path, "-epochs", "0")
			if code != exitRuntime {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitRuntime, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "train: load model "+path+": ") || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr should be one line naming %s and saying %q:\n%s", path, c.want, stderr)
			}
			if stdout != "" {
				t.Errorf("a refused model printed a report:\n%s", stdout)
			}
		})
	}
	missing := filepath.Join(dir, "missing.safetensors")
	code, _, stderr := runTrain(t, "-data-dir", filepath.Join(dir, "no-data"), "-load", missing, "-epochs", "0")
	if code != exitRuntime || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestUnwritableSavePathExit2 gives -save paths that cannot be written: the
// run must stop as a usage error before training (issue 7), not lose an
// hour of training at the end.
func TestUnwritableSavePathExit2(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{filepath.Join(dir, "no-such-folder", "m.safetensors"), "does not exist"},
		{filepath.Join(file, "m.safetensors"), "is not a folder"},
		{dir, "it is a folder, not a regular file"},
	}
	for _, c := range cases {
		code, stdout, stderr := runTrain(t, "-data-dir", filepath.Join(dir, "no-data"), "-save", c.path)
		if code != exitUsage {
			t.Errorf("-save %s: exit code %d, want %d; stderr:\n%s", c.path, code, exitUsage, stderr)
		}
		if !strings.Contains(stderr, "train: -save: cannot write "+c.path+": ") || !strings.Contains(stderr, c.want) || !oneLine(stderr) {
			t.Errorf("-save %s: stderr should be one line naming the path and saying %q:\n%s", c.path, c.want, stderr)
		}
		if strings.Contains(stderr, "msg=training") || stdout != "" {
			t.Errorf("-save %s: training started:\n%s", c.path, stderr)
		}
	}
	assertDirHolds(t, dir, "file")
}

func TestHelpDocumentsSaveLoad(t *testing.T) {
	_, _, stderr := runTrain(t, "-h")
	for _, f := range []string{"-save", "-load"} {
		if !strings.Contains(stderr, f) {
			t.Errorf("-h does not document %s", f)
		}
	}
}

func TestProgramVersion(t *testing.T) {
	// Test binaries carry no VCS stamp, so this is the fallback; the
	// built binary's value is checked (non-empty) in TestSaveLoadReproduces.
	if v := programVersion(); v == "" {
		t.Error("empty program version")
	}
}

// assertDirHolds checks a folder holds exactly the named entries.
func assertDirHolds(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("folder holds %v, want %v", got, want)
	}
}
