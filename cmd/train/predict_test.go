//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mnist/data"
	"mnist/gpu"
	"mnist/model"
)

// TestPredictImages is the test: a model trained briefly with -save,
// then -load -predict on PNGs made from real test-set images must give the
// digit the same model gives those images straight from the IDX data, both
// for the image as it is (white on black, 28×28), for a dark-on-light,
// 3× larger colour version on a bigger canvas, and for that version
// photographed in uneven light with noise.
func TestPredictImages(t *testing.T) {
	t.Parallel()
	dataDir := realDataDir(t)
	dir := t.TempDir()
	saved := filepath.Join(dir, "m.safetensors")
	if code, _, stderr := runTrain(t, "-data-dir", dataDir, "-epochs", "1", "-batch-size", "128", "-save", saved, "-log-format", "json"); code != exitOK {
		t.Fatalf("train -save exited %d:\n%s", code, stderr)
	}
	_, test, err := data.Load(context.Background(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	want := idxPredictions(t, saved, test.Subset(200))

	// Images the model is sure of: top probability at least 0.99, so the
	// second class is at most 0.01 and the log-probability gap at least
	// ln(99) ≈ 4.6. Our preprocessing re-crops and resamples the digit
	// (area averaging, centre of mass rounded to a whole pixel), which
	// moves pixels by a fraction of a grey level or a pixel; a margin that
	// wide cannot be overturned by that, a borderline image could be.
	// Two different digits, so that a constant answer cannot pass.
	var picked []int
	for i := range 200 {
		if want[i].prob >= 0.99 && (len(picked) == 0 || want[picked[0]].digit != want[i].digit) {
			picked = append(picked, i)
			if len(picked) == 2 {
				break
			}
		}
	}
	if len(picked) < 2 {
		t.Fatalf("fewer than two confident test images among the first 200: %v", want)
	}

	var files []string
	var wantDigits []int
	for _, i := range picked {
		px := test.Images[i*data.ImageSize : (i+1)*data.ImageSize]
		plain := filepath.Join(dir, "test"+strconv.Itoa(i)+".png")
		writePNG(t, plain, mnistGray(px))
		light := filepath.Join(dir, "test"+strconv.Itoa(i)+"-dark-on-light.png")
		writePNG(t, light, darkOnLight(px, 3, 130, 110))
		shaded := filepath.Join(dir, "test"+strconv.Itoa(i)+"-shaded-photo.png")
		writePNG(t, shaded, shadedPhoto(darkOnLight(px, 3, 130, 110), uint64(i)))
		files = append(files, plain, light, shaded)
		wantDigits = append(wantDigits, want[i].digit, want[i].digit, want[i].digit)
	}

	args := append([]string{"-load", saved, "-predict"}, files...)
	code, stdout, stderr := runTrain(t, args...)
	if code != exitOK {
		t.Fatalf("-predict exited %d:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(files) {
		t.Fatalf("%d stdout lines for %d files:\n%s", len(lines), len(files), stdout)
	}
	// On a terminal stdout and stderr are one screen: the results must not
	// also be logged there.
	if strings.Contains(stderr, "prediction") || strings.Contains(stderr, "top3") {
		t.Errorf("text mode logged the predictions as well as printing them:\n%s", stderr)
	}
	for k, line := range lines {
		prefix := files[k] + ": " + strconv.Itoa(wantDigits[k]) + "  ("
		if !strings.HasPrefix(line, prefix) || strings.Count(line, "%") != 3 {
			t.Errorf("line %q, want it to start %q and list 3 probabilities", line, prefix)
		}
	}

	code, stdout, stderr = runTrain(t, append([]string{"-log-format", "json"}, args...)...)
	if code != exitOK || stdout != "" {
		t.Fatalf("-predict json exited %d, stdout %q:\n%s", code, stdout, stderr)
	}
	k := 0
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var e struct {
			Msg, File string
			Digit     int
			Top3      []classProb
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Msg != "prediction" {
			continue
		}
		if k >= len(files) || e.File != files[k] || e.Digit != wantDigits[k] || len(e.Top3) != 3 || e.Top3[0].Digit != e.Digit ||
			e.Top3[0].Probability < e.Top3[1].Probability || e.Top3[1].Probability < e.Top3[2].Probability {
			t.Errorf("prediction entry %d: %+v, want file %s digit %d", k, e, files[k%len(files)], wantDigits[k%len(wantDigits)])
		}
		k++
	}
	if k != len(files) {
		t.Errorf("%d prediction entries for %d files:\n%s", k, len(files), stderr)
	}

	t.Run("bad files exit 1", func(t *testing.T) { testPredictBadFiles(t, saved, files[0]) })
	t.Run("no MNIST needed", func(t *testing.T) { testPredictWithoutData(t, saved, files[0]) })
}

// idxPrediction is what the model makes of one image fed from the IDX data.
type idxPrediction struct {
	digit int
	prob  float64
}

// idxPredictions runs the saved model on set in-process on the CPU.
func idxPredictions(t *testing.T, saved string, set *data.Set) []idxPrediction {
	t.Helper()
	p, _, err := model.LoadSafetensors(context.Background(), saved)
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.DefaultConfig()
	cfg.BatchSize = 128
	e, err := gpu.CPU().NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.SetState(model.State{Params: p}); err != nil {
		t.Fatal(err)
	}
	lp, err := model.Predict(context.Background(), e, set, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]idxPrediction, set.Len())
	for i := range out {
		top := topClasses(lp[i*data.NumClasses:(i+1)*data.NumClasses], 1)
		out[i] = idxPrediction{top[0].Digit, top[0].Probability}
	}
	return out
}

// mnistGray is one MNIST image as a 28×28 grey image, pixel for pixel.
func mnistGray(px []byte) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, data.ImageCols, data.ImageRows))
	copy(img.Pix, px)
	return img
}

// darkOnLight draws the MNIST image inverted (dark blue ink on cream paper),
// scale× larger, off-centre on a w×h canvas: everything the preprocessing
// must undo.
func darkOnLight(px []byte, scale, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	paper := color.RGBA{250, 245, 230, 255}
	for i := range w * h {
		img.Set(i%w, i/w, paper)
	}
	for y := range data.ImageRows * scale {
		for x := range data.ImageCols * scale {
			a := float64(px[(y/scale)*data.ImageCols+x/scale]) / 255
			mix := func(p, ink uint8) uint8 { return uint8(math.Round((1-a)*float64(p) + a*float64(ink))) }
			img.Set(x+7, y+3, color.RGBA{mix(paper.R, 10), mix(paper.G, 20), mix(paper.B, 80), 255})
		}
	}
	return img
}

// shadedPhoto is img as a phone photo in poor light: the light falls to a
// quarter toward the bottom-right corner, and there is camera noise (a
// standard deviation of 5 grey levels). The shaded corner is as dark as the
// ink: counted as ink, it drags the digit's box and centre into the corner
// and the digit is misread.
func shadedPhoto(img *image.RGBA, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 2))
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			u, v := float64(x-b.Min.X)/float64(b.Dx()), float64(y-b.Min.Y)/float64(b.Dy())
			light := 1 - 0.75*math.Pow((u+v)/2, 2)
			c := img.RGBAAt(x, y)
			n := 5 * rng.NormFloat64()
			f := func(ch uint8) uint8 { return uint8(math.Round(min(max(float64(ch)*light+n, 0), 255))) }
			out.SetRGBA(x, y, color.RGBA{f(c.R), f(c.G), f(c.B), 255})
		}
	}
	return out
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// testPredictBadFiles: each unusable file is one error line naming it and
// exit 1, even next to a good file.
func testPredictBadFiles(t *testing.T, saved, good string) {
	dir := t.TempDir()
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	blank := filepath.Join(dir, "blank.png")
	white := image.NewGray(image.Rect(0, 0, 40, 40))
	for i := range white.Pix {
		white.Pix[i] = 255
	}
	writePNG(t, blank, white)
	cases := map[string]struct{ file, says string }{
		"missing":       {filepath.Join(dir, "missing.png"), "no such file"},
		"not an image":  {write("notes.png", []byte("hello, not a picture\n")), "not a PNG or JPEG"},
		"truncated PNG": {write("cut.png", goodBytes[:len(goodBytes)/2]), "decode"},
		"empty file":    {write("empty.png", nil), "not a PNG or JPEG"},
		"blank image":   {blank, "blank"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runTrain(t, "-load", saved, "-predict", good, c.file)
			if code != exitRuntime {
				t.Fatalf("exit code %d, want %d:\n%s", code, exitRuntime, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing when a file is bad", stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "train: ") || !strings.Contains(last, c.file) || !strings.Contains(last, c.says) {
				t.Errorf("last stderr line %q, want one error naming %s and saying %q", last, c.file, c.says)
			}
		})
	}
}

// testPredictWithoutData runs -predict with an empty user cache folder:
// it must succeed without fetching or creating the MNIST folder.
func testPredictWithoutData(t *testing.T, saved, img string) {
	cache := t.TempDir()
	cmd := exec.Command(binary, "-load", saved, "-predict", img)
	// In the cuda build the CUDA driver caches the kernels it compiles from
	// PTX in $HOME/.nv; that is the driver's, so it is turned off here.
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache, "HOME="+cache, "CUDA_CACHE_DISABLE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("-predict with an empty cache: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("-predict wrote into the cache folder: %v", entries)
	}
}

func TestPredictUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"-predict", "a.png"},                  // no model
		{"-load", "m.safetensors", "-predict"}, // no images
		{"-load", "m.safetensors", "-predict", "-epochs", "1", "a.png"},
		{"-load", "m.safetensors", "-predict", "-save", "x.safetensors", "a.png"},
		{"-load", "m.safetensors", "a.png"}, // images without -predict
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := runTrain(t, args...)
			if code != exitUsage || !oneLine(stderr) {
				t.Errorf("exit code %d, want %d with one error line:\n%s", code, exitUsage, stderr)
			}
		})
	}
}
