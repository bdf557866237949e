package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mnist/gpu"
	"mnist/model"
)

// metricsDocForTest is what a reader of -metrics-out sees; parsing into a
// separate struct (not metricsFile) checks the field names too.
type metricsDocForTest struct {
	Interrupted *bool  `json:"interrupted"`
	Device      string `json:"device"`
	Flags       struct {
		Epochs            *int               `json:"epochs"`
		BatchSize         *int               `json:"batch_size"`
		Optimizer         *string            `json:"optimizer"`
		OptimizerSettings map[string]float64 `json:"optimizer_settings"`
		Seed              *uint64            `json:"seed"`
		DataDir           *string            `json:"data_dir"`
		Engine            *string            `json:"engine"`
	} `json:"flags"`
	Epochs []struct {
		Epoch         int      `json:"epoch"`
		TrainLoss     *float64 `json:"train_loss"`
		TrainAccuracy *float64 `json:"train_accuracy"`
		Seconds       *float64 `json:"seconds"`
	} `json:"epochs"`
	Test struct {
		Loss            float64    `json:"loss"`
		Accuracy        float64    `json:"accuracy"`
		Images          int        `json:"images"`
		ConfusionMatrix [][]int    `json:"confusion_matrix"`
		ClassAccuracy   []*float64 `json:"class_accuracy"`
		ClassImages     []int      `json:"class_images"`
	} `json:"test"`
}

func readMetrics(t *testing.T, path string) metricsDocForTest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read -metrics-out: %v", err)
	}
	var doc metricsDocForTest
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse -metrics-out: %v\n%s", err, b)
	}
	return doc
}

// checkMetricsDoc checks what must hold for any run's metrics file.
func checkMetricsDoc(t *testing.T, doc metricsDocForTest, images int) {
	t.Helper()
	if doc.Interrupted == nil || doc.Device == "" || doc.Flags.Epochs == nil || doc.Flags.BatchSize == nil ||
		doc.Flags.Seed == nil || doc.Flags.DataDir == nil || doc.Flags.Engine == nil {
		t.Errorf("missing run fields: %+v", doc)
	}
	// The default optimizer is the spec's Adam, with Keras's settings.
	if doc.Flags.Optimizer == nil || *doc.Flags.Optimizer != "adam" ||
		!reflect.DeepEqual(doc.Flags.OptimizerSettings, map[string]float64{"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}) {
		t.Errorf("optimizer %v with settings %v, want adam with lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7", doc.Flags.Optimizer, doc.Flags.OptimizerSettings)
	}
	for i, e := range doc.Epochs {
		if e.Epoch != i+1 || e.TrainLoss == nil || e.TrainAccuracy == nil || e.Seconds == nil {
			t.Errorf("epoch entry %d incomplete: %+v", i, e)
		}
	}
	m := doc.Test
	if m.Images != images || len(m.ConfusionMatrix) != model.Classes || len(m.ClassAccuracy) != model.Classes || len(m.ClassImages) != model.Classes {
		t.Fatalf("test section malformed: %+v", m)
	}
	var total, diag int
	for label, row := range m.ConfusionMatrix {
		if len(row) != model.Classes {
			t.Fatalf("confusion row %d has %d columns", label, len(row))
		}
		rowSum := 0
		for p, v := range row {
			total += v
			rowSum += v
			if p == label {
				diag += v
			}
		}
		if rowSum != m.ClassImages[label] {
			t.Errorf("row %d sums to %d, class_images says %d", label, rowSum, m.ClassImages[label])
		}
		if a := m.ClassAccuracy[label]; rowSum > 0 && (a == nil || *a != float64(row[label])/float64(rowSum)) {
			t.Errorf("class %d accuracy %v, want %d/%d", label, a, row[label], rowSum)
		}
	}
	if total != images {
		t.Errorf("confusion matrix counts %d images, want %d", total, images)
	}
	if got := float64(diag) / float64(images); got != m.Accuracy {
		t.Errorf("diagonal / images = %v, accuracy %v", got, m.Accuracy)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open -plot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode -plot %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != plotWidthPixels || b.Dy() != plotHeightPixels {
		t.Errorf("plot is %dx%d pixels, want %dx%d", b.Dx(), b.Dy(), plotWidthPixels, plotHeightPixels)
	}
}

// noTempFiles fails if an atomic write left its temporary file behind.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

// TestMetricsOutAndPlot runs one short epoch of the built binary on the
// real data with both outputs, in both log formats, and checks the files
// against the evaluation log entry.
func TestMetricsOutAndPlot(t *testing.T) {
	t.Parallel()
	dir := realDataDir(t)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			out := t.TempDir()
			metricsPath, plotPath := filepath.Join(out, "m.json"), filepath.Join(out, "p.png")
			code, stdout, stderr := runTrain(t, "-data-dir", dir, "-epochs", "1", "-batch-size", "128", "-seed", "3",
				"-log-format", format, "-metrics-out", metricsPath, "-plot", plotPath)
			if code != exitOK {
				t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
			}
			doc := readMetrics(t, metricsPath)
			checkMetricsDoc(t, doc, 10000)
			if *doc.Interrupted || len(doc.Epochs) != 1 || *doc.Flags.BatchSize != 128 || *doc.Flags.Seed != 3 ||
				*doc.Flags.Epochs != 1 || *doc.Flags.DataDir != dir || !isBuildsDevice(doc.Device) {
				t.Errorf("run fields do not match the flags: %+v", doc)
			}
			checkPNG(t, plotPath)
			noTempFiles(t, out)
			if format == "text" {
				for _, want := range []string{"Confusion matrix (rows: true digit, columns: predicted)", "accuracy"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("text report lacks %q:\n%s", want, stdout)
					}
				}
				return
			}
			e := evaluationEntry(t, stderr)
			if e["test_accuracy"] != doc.Test.Accuracy || e["test_loss"] != doc.Test.Loss {
				t.Errorf("log says accuracy %v loss %v, metrics file %v %v", e["test_accuracy"], e["test_loss"], doc.Test.Accuracy, doc.Test.Loss)
			}
			if ca, _ := e["test_class_accuracy"].([]any); len(ca) != model.Classes {
				t.Errorf("evaluation entry test_class_accuracy = %v, want %d numbers", e["test_class_accuracy"], model.Classes)
			}
		})
	}
}

// TestBadOutputPathExits2: an output that cannot be written is a usage
// error found before anything else happens. The data folder is a plain
// file, which would exit 1 if the run got as far as the data.
func TestBadOutputPathExits2(t *testing.T) {
	tmp := t.TempDir()
	notDir := filepath.Join(tmp, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, flag, path, want string
	}{
		{"metrics in a missing folder", "-metrics-out", filepath.Join(tmp, "missing", "m.json"), "does not exist"},
		{"plot in a missing folder", "-plot", filepath.Join(tmp, "missing", "p.png"), "does not exist"},
		{"metrics under a file", "-metrics-out", filepath.Join(notDir, "m.json"), "is not a folder"},
		{"plot is a folder", "-plot", tmp, "it is a folder, not a regular file"},
		{"metrics is a folder", "-metrics-out", tmp, "it is a folder, not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runTrain(t, "-data-dir", notDir, tc.flag, tc.path)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.flag+": cannot write "+tc.path+": ") || !strings.Contains(stderr, tc.want) || !oneLine(stderr) {
				t.Errorf("stderr should be one line naming %s and saying %q:\n%s", tc.flag, tc.want, stderr)
			}
		})
	}
	noTempFiles(t, tmp)
}

func TestHelpDocumentsOutputFlags(t *testing.T) {
	_, _, stderr := runTrain(t, "-h")
	for _, flag := range []string{"-metrics-out", "-plot"} {
		if !strings.Contains(stderr, flag) {
			t.Errorf("-h does not document %s", flag)
		}
	}
}

// testReport is a report of a made-up run, for the tests that need no
// training.
func testReport(epochs int, partial bool) report {
	r := report{cfg: model.DefaultConfig(), device: "cpu", partial: partial, dataDir: "/data", epochsDone: epochs}
	for e := 1; e <= epochs; e++ {
		r.history = append(r.history, model.EpochStats{Epoch: e, Loss: 0.3 / float64(e), Accuracy: 1 - 0.1/float64(e), Seconds: 3})
	}
	// 9 of 10 images right; no image of class 3.
	for label := range model.Classes {
		if label != 3 {
			r.metrics.Confusion[label][label]++
		}
	}
	r.metrics.Confusion[0][1]++
	r.metrics.Images, r.metrics.Accuracy, r.metrics.Loss = 10, 0.9, 0.25
	return r
}

// TestWriteOutputs writes both files for made-up runs (no epoch finished,
// one, many, interrupted) and checks what a reader gets.
func TestWriteOutputs(t *testing.T) {
	cases := []struct {
		name    string
		epochs  int
		partial bool
	}{
		{"evaluation only", 0, false},
		{"one epoch", 1, false},
		{"interrupted", 2, true},
		{"many epochs", 40, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := options{metricsOut: filepath.Join(dir, "m.json"), plotOut: filepath.Join(dir, "p.png")}
			if err := checkOutputs(o); err != nil {
				t.Fatal(err)
			}
			if err := testReport(tc.epochs, tc.partial).writeOutputs(o); err != nil {
				t.Fatal(err)
			}
			doc := readMetrics(t, o.metricsOut)
			checkMetricsDoc(t, doc, 10)
			if *doc.Interrupted != tc.partial || len(doc.Epochs) != tc.epochs {
				t.Errorf("interrupted %v with %d epochs, want %v and %d", *doc.Interrupted, len(doc.Epochs), tc.partial, tc.epochs)
			}
			if doc.Test.ClassAccuracy[3] != nil {
				t.Errorf("class 3 has no images: accuracy %v, want null", *doc.Test.ClassAccuracy[3])
			}
			checkPNG(t, o.plotOut)
			noTempFiles(t, dir)
		})
	}
}

// TestPrintConfusionAligned: every line of the matrix is as long as the
// header, whatever the size of the counts, and an empty class reads "-".
func TestPrintConfusionAligned(t *testing.T) {
	cases := []struct {
		name string
		big  int
	}{{"small counts", 7}, {"test-set counts", 1135}, {"huge counts", 1234567}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testReport(0, false)
			r.metrics.Confusion[9][9] = tc.big
			var buf bytes.Buffer
			printConfusion(&buf, &r.metrics.Confusion)
			lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
			if len(lines) != 2+model.Classes {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), 2+model.Classes, buf.String())
			}
			for _, l := range lines[2:] {
				if len(l) != len(lines[1]) {
					t.Errorf("line %q is %d wide, header %d:\n%s", l, len(l), len(lines[1]), buf.String())
				}
			}
			if !strings.HasSuffix(lines[2+3], " -") || !strings.HasSuffix(lines[2], "50.00%") {
				t.Errorf("class 3 should read -, class 0 50.00%%:\n%s", buf.String())
			}
		})
	}
}

// TestClassAccuracyFieldEncodes: the log field must survive JSON (no NaN).
func TestClassAccuracyFieldEncodes(t *testing.T) {
	b, err := json.Marshal(testReport(0, false).classAccuracyField())
	if err != nil {
		t.Fatal(err)
	}
	var got []*float64
	if err := json.Unmarshal(b, &got); err != nil || len(got) != model.Classes || got[3] != nil || *got[0] != 0.5 || math.IsNaN(*got[1]) {
		t.Errorf("class accuracy field %s (err %v)", b, err)
	}
}

// isBuildsDevice reports whether name is the device this build trains on:
// the host, or in the cuda build (which these tests also run in, on a GPU
// host) the first GPU, named as in "cuda:0 NVIDIA H100 80GB HBM3 (native)".
func isBuildsDevice(name string) bool {
	if gpu.BuiltWithCUDA {
		return strings.HasPrefix(name, "cuda:0 ")
	}
	return name == "cpu"
}
