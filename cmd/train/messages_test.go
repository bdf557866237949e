package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"gorgonia.org/tensor"

	"mnist/model"
)

// runInProcess is run with buffers: for the failures that happen before
// any data is read, which need no binary.
func runInProcess(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestBadFlagsOneLine: a bad command line gets one error line, not the
// whole help around the error twice.
func TestBadFlagsOneLine(t *testing.T) {
	cases := []struct {
		args []string
		says string
	}{
		{[]string{"-epoch", "3"}, "unknown flag -epoch (did you mean -epochs?)"},
		{[]string{"-bach-size", "3"}, "unknown flag -bach-size (did you mean -batch-size?)"},
		{[]string{"-batch", "3"}, "(did you mean -batch-size?)"},
		{[]string{"--chekpoint-dir", "x"}, "(did you mean -checkpoint-dir?)"},
		{[]string{"-xyz"}, "train: unknown flag -xyz (train -h lists the flags)\n"},
		{[]string{"-lr", "abc"}, "train: -lr abc: want a number"},
		{[]string{"-epochs", "2.5"}, "train: -epochs 2.5: want a whole number"},
		{[]string{"-seed", "-1"}, "train: -seed -1: want a whole number, 0 or more"},
		{[]string{"-predict", "a.png", "-load", "m.safetensors"}, `flag -load comes after the argument "a.png": flags must come before the image names`},
		{[]string{"-load", "m.safetensors", "-predict", "a.png", "-log-format", "json"}, "flag -log-format comes after"},
		{[]string{"-epochs", "0"}, "-epochs 0 only evaluates a model, and none was given"},
		{[]string{"-load", "m.safetensors", "-epochs", "0", "-seed", "3"}, "train: -seed cannot be used with -epochs 0, which only evaluates the -load model\n"},
		{[]string{"-load", "m.safetensors", "-epochs", "0", "-lr", "0.1"}, "-lr cannot be used with -epochs 0"},
		{[]string{"-load", "m.safetensors", "-epochs", "0", "-optimizer", "sgd"}, "-optimizer cannot be used with -epochs 0"},
		{[]string{"-load", "m.safetensors", "-epochs", "0", "-checkpoint-dir", "c"}, "-checkpoint-dir cannot be used with -epochs 0"},
		// The other modes' own refusals come first: they do not evaluate.
		{[]string{"-serve", ":0", "-load", "m.safetensors", "-epochs", "0", "-seed", "3"}, "-epochs cannot be used with -serve"},
		{[]string{"-load", "m.safetensors", "-predict", "-epochs", "0", "-lr", "1", "a.png"}, "-epochs cannot be used with -predict"},
		{[]string{"-download-only", "-load", "m.safetensors", "-epochs", "0", "-lr", "1"}, "-epochs cannot be used with -download-only"},
		{[]string{"-epochs", "-1"}, "train: -epochs must be 0 or more, got -1\n"},
		{[]string{"-batch-size", "0"}, "train: -batch-size must be from 1 to 60000 (the training set's size), got 0\n"},
		{[]string{"-lr", "0"}, "train: -lr must be a positive number, got 0\n"},
		{[]string{"-lr", "Inf"}, "train: -lr must be a positive number, got +Inf\n"},
		{[]string{"-download-only", "-save", "m.safetensors"}, "train: -save cannot be used with -download-only, which only fetches and verifies the data\n"},
		{[]string{"-download-only", "-epochs", "3"}, "-epochs cannot be used with -download-only"},
		{[]string{"-download-only", "-engine", "gorgonia"}, "-engine cannot be used with -download-only"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stdout, stderr := runInProcess(c.args...)
			if code != exitUsage || stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d and nothing", code, stdout, exitUsage)
			}
			if !oneLine(stderr) {
				t.Errorf("stderr is not one error line:\n%s", stderr)
			}
			if !strings.Contains(stderr, c.says) {
				t.Errorf("stderr does not say %q:\n%s", c.says, stderr)
			}
		})
	}
	// After "--" a name starting with "-" is a file's: the run goes on to
	// load the model.
	if code, _, stderr := runInProcess("-load", "none.safetensors", "-predict", "--", "-a.png"); code != exitRuntime || !strings.Contains(stderr, "none.safetensors") {
		t.Errorf("-- -a.png: exit %d:\n%s", code, stderr)
	}
	// A name far from every flag gets no suggestion.
	if _, _, stderr := runInProcess("-verbose"); strings.Contains(stderr, "did you mean") {
		t.Errorf("suggested a flag for -verbose:\n%s", stderr)
	}
}

// TestBatchSizeCheckedBeforeData: a batch larger than the training set
// is refused, with the largest one allowed, before the data folder is
// made or 11 MB are downloaded into it; the largest batch passes.
func TestBatchSizeCheckedBeforeData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnist")
	code, _, stderr := runInProcess("-batch-size", "60001", "-data-dir", dir)
	if want := "train: -batch-size must be from 1 to 60000 (the training set's size), got 60001\n"; code != exitUsage || stderr != want {
		t.Errorf("-batch-size 60001: exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the data folder was touched before the flags were checked: stat: %v", err)
	}
	if _, err := parseFlags([]string{"-batch-size", "60000"}, io.Discard); err != nil {
		t.Errorf("-batch-size 60000: %v", err)
	}
}

// TestDownloadOnlyTakesDataFlags: -download-only refuses the training
// flags (TestBadFlagsOneLine) but takes the ones that say where the data
// goes and how to log.
func TestDownloadOnlyTakesDataFlags(t *testing.T) {
	o, err := parseFlags([]string{"-download-only", "-data-dir", "d", "-log-level", "warn", "-log-format", "json"}, io.Discard)
	if err != nil || !o.downloadOnly || o.dataDir != "d" || o.logLevel != "warn" || o.logFormat != "json" {
		t.Errorf("parseFlags = %+v, %v; want -download-only with its data and log flags", o, err)
	}
}

// TestNoDefaultDataFolder: without -data-dir and with no user cache
// folder to default to (no $HOME, or a relative $XDG_CACHE_HOME), the run
// stops with one line that says why and names the flag to give, once.
func TestNoDefaultDataFolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the cache folder's environment variables are Linux's")
	}
	cases := []struct {
		name       string
		home, xdg  string
		args       []string
		outsideDir bool // the run is started in a fresh folder
	}{
		{"no HOME", "", "", []string{"-epochs", "1"}, false},
		{"relative XDG_CACHE_HOME", "", "cache", []string{"-epochs", "1"}, true},
		{"download-only", "", "", []string{"-download-only"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("HOME", c.home)
			t.Setenv("XDG_CACHE_HOME", c.xdg)
			if c.outsideDir {
				t.Chdir(t.TempDir())
			}
			_, cause := os.UserCacheDir()
			if cause == nil {
				t.Fatal("os.UserCacheDir found a folder in this environment")
			}
			code, stdout, stderr := runInProcess(c.args...)
			want := "train: no user cache folder to keep MNIST in: " + cause.Error() + "; give a data folder with -data-dir DIR\n"
			if code != exitRuntime || stdout != "" || stderr != want {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, nothing, %q", code, stdout, stderr, exitRuntime, want)
			}
			if c.outsideDir {
				if _, err := os.Stat("cache"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a folder was made under the relative $XDG_CACHE_HOME: stat: %v", err)
				}
			}
		})
	}
}
func TestNearestFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	for _, n := range []string{"epochs", "lr", "load", "log-level", "log-format", "batch-size", "seed", "save", "gpu"} {
		fs.Bool(n, false, "")
	}
	for name, want := range map[string]string{
		"epoch": "epochs", "epoches": "epochs", "eopchs": "epochs", "ephocs": "epochs", "epcohs": "epochs",
		"batchsize": "batch-size", "batch": "batch-size",
		"lod": "load", "saev": "save", "gpus": "gpu", "seeds": "seed",
		"l": "", "x": "", "learning-rate": "", "log": "log-format", // the first of two flags it starts
	} {
		if got := nearestFlag(fs, name); got != want {
			t.Errorf("nearestFlag(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestErrorsInJSON: with -log-format json the final error is one JSON log
// entry like every other line, with the exit code, not a "train: " line.
func TestErrorsInJSON(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.safetensors")
	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"usage error", []string{"-log-format", "json", "-epochs", "0"}, exitUsage, "-epochs 0 only evaluates"},
		{"runtime error", []string{"-log-format", "json", "-load", missing, "-epochs", "0"}, exitRuntime, missing},
		{"bad flag after -log-format", []string{"-log-format", "json", "-epoch", "3"}, exitUsage, "did you mean -epochs?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runInProcess(c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			var e map[string]any
			if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &e) != nil {
				t.Fatalf("stderr is not one JSON entry:\n%s", stderr)
			}
			if e["level"] != "error" || !strings.Contains(e["msg"].(string), c.says) || e["exit_code"] != float64(c.code) {
				t.Errorf("entry %v, want level error, msg saying %q, exit_code %d", e, c.says, c.code)
			}
		})
	}
}

// TestFailIsOneLine: an error of several lines ends the run with one
// line all the same, in text and in JSON. A step that fails mid-epoch
// gives such an error when the read of the running totals after it fails
// for another reason: the trainer joins the two (model.Trainer.epoch, as
// TestDeviceLoopStepFailure's "the read fails otherwise" checks), and
// leaves out a read that only repeats the step's fault.
func TestFailIsOneLine(t *testing.T) {
	fault := errors.New("launching kernel gather_images: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered")
	err := errors.Join(
		fmt.Errorf("epoch 1 step 57: native cuda: %w", fault),
		errors.New("epoch 1 step 56: totals lost"))
	want := "epoch 1 step 57: native cuda: " + fault.Error() + "; epoch 1 step 56: totals lost"

	var text bytes.Buffer
	if code := fail("text", &text, err, exitRuntime); code != exitRuntime {
		t.Errorf("exit %d, want %d", code, exitRuntime)
	}
	if got := text.String(); got != "train: "+want+"\n" {
		t.Errorf("text:\n%s\nwant:\ntrain: %s", got, want)
	}

	var js bytes.Buffer
	fail("json", &js, err, exitRuntime)
	lines := strings.Split(strings.TrimRight(js.String(), "\n"), "\n")
	var e map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &e) != nil {
		t.Fatalf("stderr is not one JSON entry:\n%s", js.String())
	}
	if e["msg"] != want {
		t.Errorf("msg %q, want %q", e["msg"], want)
	}
}

// saveParams writes a model file whose parameters are the seed-1 initial
// weights changed by edit.
func saveParams(t *testing.T, path string, meta map[string]string, edit func(p *model.Params)) {
	t.Helper()
	p, err := model.NewParams(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	edit(p)
	if err := model.SaveSafetensors(path, p, meta); err != nil {
		t.Fatal(err)
	}
}

// saveRealCheckpoint writes a checkpoint as -checkpoint-dir does, full size
// (2.7 MB, far more than a model file), with a fresh Adam state.
func saveRealCheckpoint(t *testing.T, path string) {
	t.Helper()
	cfg := model.DefaultConfig()
	p, err := model.NewParams(cfg.Dtype, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := model.NewOptimizerState(cfg.Optimizer.Name)
	if err != nil {
		t.Fatal(err)
	}
	order := make([]int, 60000)
	for i := range order {
		order[i] = i
	}
	ck := &model.Checkpoint{Config: cfg, Params: p, Optimizer: opt, Train: model.TrainState{Order: order}}
	if err := model.SaveCheckpoint(path, ck); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRefusals: a checkpoint given to -load is pointed to -resume (a
// usage error), and a model with NaN or infinite weights is refused with
// the tensor named, both before any data is looked for.
func TestLoadRefusals(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt", "epoch-0001.safetensors")
	os.Mkdir(filepath.Dir(ckpt), 0o755)
	saveRealCheckpoint(t, ckpt)
	nan := filepath.Join(dir, "nan.safetensors")
	saveParams(t, nan, nil, func(p *model.Params) { p.Tensors[2].Float32s()[17] = float32(math.NaN()) })
	inf := filepath.Join(dir, "inf.safetensors")
	saveParams(t, inf, nil, func(p *model.Params) { p.Tensors[5].Float32s()[0] = float32(math.Inf(-1)) })
	noData := filepath.Join(dir, "no-data")
	cases := []struct {
		name, file string
		code       int
		says       string
	}{
		{"checkpoint", ckpt, exitUsage, "training checkpoint, not a model file: to carry on training from it, use -resume -checkpoint-dir " + filepath.Dir(ckpt)},
		{"NaN weight", nan, exitRuntime, `tensor "dense2.weight" holds 1 non-finite values (the first, at index 17, is NaN)`},
		{"-Inf bias", inf, exitRuntime, `tensor "dense3.bias" holds 1 non-finite values (the first, at index 0, is -Inf)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{
				{"-data-dir", noData, "-load", c.file, "-epochs", "0"},
				{"-load", c.file, "-predict", "any.png"},
			} {
				code, stdout, stderr := runInProcess(args...)
				first := strings.SplitN(stderr, "\n", 2)[0]
				if code != c.code || stdout != "" || !strings.HasPrefix(first, "train: load model "+c.file+": ") || !strings.Contains(first, c.says) {
					t.Errorf("%v: exit %d (want %d), stderr:\n%s\nwant it to say %q", args, code, c.code, stderr, c.says)
				}
			}
		})
	}
	if _, err := os.Stat(noData); !os.IsNotExist(err) {
		t.Errorf("the data folder was looked for: %v", err)
	}
}

func TestLiveBar(t *testing.T) {
	cases := []struct {
		format   string
		terminal bool
		term     string
		want     bool
	}{
		{"text", true, "xterm-256color", true},
		{"text", true, "", true},
		{"text", true, "dumb", false},
		{"text", false, "xterm", false},
		{"json", true, "xterm", false},
	}
	for _, c := range cases {
		if got := liveBar(c.format, c.terminal, c.term); got != c.want {
			t.Errorf("liveBar(%q, %v, %q) = %v, want %v", c.format, c.terminal, c.term, got, c.want)
		}
	}
}

// TestTrainingLine: no training line when nothing was trained, singular
// and plural right, an interrupted run said to be interrupted, and no time
// for a partial model this run did not train.
func TestTrainingLine(t *testing.T) {
	cases := []struct {
		name   string
		r      report
		want   string // "" for no line
		absent string
	}{
		{"evaluation only", report{}, "", ""},
		{"one epoch", report{epochsDone: 1, trainImages: 60000, trainSeconds: 3}, "1 epoch in 3.0 s, 20000 images/s", "epochs"},
		{"five epochs", report{epochsDone: 5, trainImages: 300000, trainSeconds: 15}, "5 epochs in 15.0 s, 20000 images/s", ""},
		{"interrupted in the second epoch", report{epochsDone: 1, trainImages: 90000, trainSeconds: 4.5, partial: true}, "interrupted after 1 epoch in 4.5 s", "epochs"},
		{"interrupted in the first", report{epochsDone: 0, trainImages: 640, trainSeconds: 0.1, partial: true}, "interrupted after 0 epochs in 0.1 s", ""},
		{"a mid-epoch checkpoint evaluated", report{epochsDone: 2, partial: true}, "interrupted after 2 epochs", " in "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.r.trainingLine()
			if !strings.HasPrefix(got, c.want) || (c.want == "" && got != "") || (c.absent != "" && strings.Contains(got, c.absent)) {
				t.Errorf("%q, want %q", got, c.want)
			}
			var buf bytes.Buffer
			c.r.print(&buf)
			if has := strings.Contains(buf.String(), "  training  "); has != (c.want != "") {
				t.Errorf("report has a training line: %v, want %v:\n%s", has, c.want != "", buf.String())
			}
		})
	}
}

// TestNonFiniteResults: a loss that is not a finite number still gives a
// JSON evaluation entry with every field (the loss named as a string, the
// others numbers), and a metrics file with the loss null.
func TestNonFiniteResults(t *testing.T) {
	for _, loss := range []float64{math.Inf(1), math.NaN()} {
		r := testReport(2, false)
		r.metrics.Loss = loss
		r.history[1].Loss = loss
		var buf bytes.Buffer
		log := logrus.New()
		log.SetOutput(&buf)
		log.SetFormatter(&logrus.JSONFormatter{})
		r.log(log)
		var e map[string]any
		if err := json.Unmarshal(buf.Bytes(), &e); err != nil || e["msg"] != "evaluation" {
			t.Fatalf("loss %v: log entry %q (%v)", loss, buf.String(), err)
		}
		want := "NaN"
		if math.IsInf(loss, 1) {
			want = "+Inf"
		}
		if e["test_loss"] != want {
			t.Errorf("test_loss %#v, want %q", e["test_loss"], want)
		}
		if _, ok := e["test_accuracy"].(float64); !ok {
			t.Errorf("test_accuracy %v is not a number", e["test_accuracy"])
		}
		path := filepath.Join(t.TempDir(), "m.json")
		if err := r.writeMetrics(path); err != nil {
			t.Fatalf("loss %v: %v", loss, err)
		}
		b, _ := os.ReadFile(path)
		var doc struct {
			Epochs []struct {
				TrainLoss *float64 `json:"train_loss"`
			} `json:"epochs"`
			Test struct {
				Loss     *float64 `json:"loss"`
				Accuracy *float64 `json:"accuracy"`
			} `json:"test"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Test.Loss != nil || doc.Epochs[1].TrainLoss != nil || doc.Epochs[0].TrainLoss == nil || doc.Test.Accuracy == nil || *doc.Test.Accuracy != 0.9 {
			t.Errorf("loss %v: metrics file\n%s", loss, b)
		}
	}
}

// TestMetadataFieldsAreNumbers: the saved results a -load logs are JSON
// numbers, not the strings the file's metadata holds them as.
func TestMetadataFieldsAreNumbers(t *testing.T) {
	for in, want := range map[string]any{
		"0.9759": 0.9759, "5": int64(5), "0.07818940951695554": 0.07818940951695554,
		"+Inf": "+Inf", "NaN": "NaN", "0aaa58d": "0aaa58d", "devel": "devel",
	} {
		if got := metadataValue(in); got != want {
			t.Errorf("metadataValue(%q) = %#v, want %#v", in, got, want)
		}
	}
}

// TestOutputsAreIndependent: a metrics file that cannot be written does not
// stop the plot, and the error says which failed.
func TestOutputsAreIndependent(t *testing.T) {
	dir := t.TempDir()
	o := options{metricsOut: filepath.Join(dir, "gone", "m.json"), plotOut: filepath.Join(dir, "p.png")}
	err := testReport(2, false).writeOutputs(o)
	if err == nil || !strings.Contains(err.Error(), "write metrics") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v, want one line about the metrics", err)
	}
	checkPNG(t, o.plotOut)
}

// TestScaledModelIsReported is the reported case end to end: a model whose
// dense3.weight was multiplied by 1000 has huge logits. Its test loss must
// be a finite number, and the metrics, the plot and the model must all be
// written.
func TestScaledModelIsReported(t *testing.T) {
	dataDir := realDataDir(t)
	dir := t.TempDir()
	scaled := filepath.Join(dir, "scaled.safetensors")
	saveParams(t, scaled, nil, func(p *model.Params) {
		w := p.Tensors[4].Float32s()
		for i := range w {
			w[i] *= 1000
		}
	})
	metrics, plot, saved := filepath.Join(dir, "m.json"), filepath.Join(dir, "p.png"), filepath.Join(dir, "again.safetensors")
	code, _, stderr := runTrain(t, "-data-dir", dataDir, "-load", scaled, "-epochs", "0", "-log-format", "json",
		"-metrics-out", metrics, "-plot", plot, "-save", saved)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	e := evaluationEntry(t, stderr)
	loss, ok := e["test_loss"].(float64)
	if !ok || math.IsInf(loss, 0) || loss <= 0 {
		t.Errorf("test_loss %#v, want a finite positive number", e["test_loss"])
	}
	doc := readMetrics(t, metrics)
	if doc.Test.Loss != loss {
		t.Errorf("metrics loss %v, log %v", doc.Test.Loss, loss)
	}
	checkPNG(t, plot)
	if _, _, err := model.LoadSafetensors(context.Background(), saved); err != nil {
		t.Errorf("-save: %v", err)
	}
}
