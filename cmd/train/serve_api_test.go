//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"mnist/data"
)

// postAPI sends body to the server's path and decodes the JSON answer.
func postAPI(t *testing.T, url, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return doAPI(t, req)
}

func doAPI(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var v map[string]any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return res.StatusCode, v
}

func pixelsJSON(px []float64) []byte {
	b, _ := json.Marshal(map[string][]float64{"pixels": px})
	return b
}

func TestServeAPIBadRequests(t *testing.T) {
	c, info := openTestClassifier(t, servedModel(t))
	ts := newTestServer(t, c, info)
	predictURL := ts.URL + "/api/predict"

	_, test := loadTestDigits(t)
	good := pngBytes(t, darkOnLight(test.Images[:data.ImageSize], 9, 280, 280))
	blank := image.NewGray(image.Rect(0, 0, 280, 280))
	ones := func(n int) []float64 {
		px := make([]float64, n)
		for i := range px {
			px[i] = 1
		}
		return px
	}
	outOfRange := ones(data.ImageSize)
	outOfRange[100] = 256
	negative := ones(data.ImageSize)
	negative[0] = -0.5

	cases := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		says        string
	}{
		{"no content type", "", good, 415, "Content-Type"},
		{"text", "text/plain", []byte("7"), 415, "Content-Type"},
		{"gif", "image/gif", good, 415, "Content-Type"},
		{"form", "multipart/form-data; boundary=x", good, 415, "Content-Type"},
		{"image body over the limit", "image/png", append(bytes.Clone(good), make([]byte, maxImageBody)...), 413, "limit"},
		{"JSON body over the limit", "application/json", append([]byte(`{"pixels":[`), bytes.Repeat([]byte("0,"), maxJSONBody)...), 413, "limit"},
		{"image too large to decode", "image/png", hugeHeaderPNG(t, 50000, 50000), 413, "too large"},
		{"image over the server's pixel limit", "image/png", hugeHeaderPNG(t, 2049, 2048), 413, "2049×2048 pixels, more than the 4194304 pixels"},
		{"image at the server's pixel limit", "image/png", hugeHeaderPNG(t, 2048, 2048), 422, "decode"}, // within it, so decoded: the pixels are 1×1
		{"blank image", "image/png", pngBytes(t, blank), 422, "blank"},
		{"not an image", "image/png", []byte("hello"), 422, "not a PNG or JPEG"},
		{"truncated PNG", "image/png", good[:len(good)/2], 422, "decode"},
		{"JPEG that is text", "image/jpeg", []byte("\xff\xd8\xff not really"), 422, ""},
		{"malformed JSON", "application/json", []byte(`{"pixels": [1, 2`), 400, "malformed JSON"},
		{"pixels not numbers", "application/json", []byte(`{"pixels": "abc"}`), 400, "malformed JSON"},
		{"unknown field", "application/json", []byte(`{"pixel": [1]}`), 400, "unknown field"},
		{"two JSON values", "application/json", append(pixelsJSON(ones(784)), pixelsJSON(ones(784))...), 400, "more than one"},
		{"no pixels", "application/json", []byte(`{}`), 400, "want 784 numbers"},
		{"783 pixels", "application/json", pixelsJSON(ones(783)), 400, "got 783"},
		{"785 pixels", "application/json", pixelsJSON(ones(785)), 400, "got 785"},
		{"pixel over 255", "application/json", pixelsJSON(outOfRange), 400, "pixels[100]"},
		{"negative pixel", "application/json", pixelsJSON(negative), 400, "pixels[0]"},
		{"blank pixels", "application/json", pixelsJSON(make([]float64, 784)), 422, "blank"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, v := postAPI(t, predictURL, c.contentType, c.body)
			msg, _ := v["error"].(string)
			if status != c.status || msg == "" || !strings.Contains(msg, c.says) {
				t.Errorf("status %d %v, want %d and an error saying %q", status, v, c.status, c.says)
			}
		})
	}

	t.Run("methods and paths", func(t *testing.T) {
		for _, r := range []struct {
			method, path string
			status       int
		}{
			{http.MethodGet, "/api/predict", 405},
			{http.MethodPut, "/api/predict", 405},
			{http.MethodPost, "/api/model", 405},
			{http.MethodGet, "/api/nothing", 404},
		} {
			req, _ := http.NewRequest(r.method, ts.URL+r.path, nil)
			status, v := doAPI(t, req)
			if status != r.status || v["error"] == "" || v["error"] == nil {
				t.Errorf("%s %s: %d %v, want %d with an error", r.method, r.path, status, v, r.status)
			}
		}
	})
}

func TestServeAPIPredict(t *testing.T) {
	saved := servedModel(t)
	c, info := openTestClassifier(t, saved)
	ts := newTestServer(t, c, info)
	predictURL := ts.URL + "/api/predict"
	_, test := loadTestDigits(t)
	const n = 40
	want := idxPredictions(t, saved, test.Subset(n))

	// JSON pixels are classified as they are: the digit the same weights
	// give the IDX image, the pixels echoed back, 10 probabilities that
	// sum to 1 with the digit the most likely.
	right := 0
	for i := range n {
		img := test.Images[i*data.ImageSize : (i+1)*data.ImageSize]
		px := make([]float64, data.ImageSize)
		for k, v := range img {
			px[k] = float64(v)
		}
		ct := "application/json"
		if i%2 == 1 {
			ct = "application/json; charset=utf-8"
		}
		status, v := postAPI(t, predictURL, ct, pixelsJSON(px))
		if status != 200 {
			t.Fatalf("image %d: status %d %v", i, status, v)
		}
		p := decodePrediction(t, v)
		if p.Digit != want[i].digit {
			t.Errorf("image %d: digit %d, the model on the IDX image says %d", i, p.Digit, want[i].digit)
		}
		if math.Abs(p.Probabilities[p.Digit]-want[i].prob) > 1e-4 {
			t.Errorf("image %d: probability %v, the model on the IDX image says %v", i, p.Probabilities[p.Digit], want[i].prob)
		}
		for k, v := range img {
			if p.Pixels[k] != int(v) {
				t.Fatalf("image %d: pixel %d is %d, sent %d", i, k, p.Pixels[k], v)
			}
		}
		if p.Digit == int(test.Labels[i]) {
			right++
		}
	}
	if right < n*9/10 {
		t.Errorf("%d of %d test images right: the served model is not the trained one", right, n)
	}

	// Images: preprocessed exactly as -predict does a file, same digit.
	dir := t.TempDir()
	for _, k := range []int{0, 1, 2} {
		img := darkOnLight(test.Images[k*data.ImageSize:(k+1)*data.ImageSize], 9, 280, 280)
		var jpg bytes.Buffer
		if err := jpeg.Encode(&jpg, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		for ct, body := range map[string][]byte{"image/png": pngBytes(t, img), "image/jpeg": jpg.Bytes()} {
			status, v := postAPI(t, predictURL, ct, body)
			if status != 200 {
				t.Fatalf("image %d as %s: status %d %v", k, ct, status, v)
			}
			p := decodePrediction(t, v)
			wantPx, err := data.ImageBytesToMNIST(body)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range wantPx {
				if p.Pixels[i] != int(v) {
					t.Fatalf("image %d as %s: pixel %d is %d, the -predict preprocessing gives %d", k, ct, i, p.Pixels[i], v)
				}
			}
			file := filepath.Join(dir, strconv.Itoa(k)+strings.TrimPrefix(ct, "image/"))
			if err := os.WriteFile(file, body, 0o644); err != nil {
				t.Fatal(err)
			}
			if d := predictDigit(t, saved, file); p.Digit != d {
				t.Errorf("image %d as %s: digit %d, -predict says %d", k, ct, p.Digit, d)
			}
		}
	}

	t.Run("model", func(t *testing.T) {
		res, err := http.Get(ts.URL + "/api/model")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m modelInfo
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(saved)
		if err != nil {
			t.Fatal(err)
		}
		if m.File != filepath.Base(saved) || m.Device == "" || m.Metadata["epochs"] != "2" || !m.Modified.Equal(st.ModTime()) {
			t.Errorf("model info %+v, want the file's name, the device, 2 epochs and its modification time", m)
		}
		acc, err := strconv.ParseFloat(m.Metadata["test_accuracy"], 64)
		if err != nil || acc < 0.9 {
			t.Errorf("test_accuracy %q", m.Metadata["test_accuracy"])
		}
		if m.Confusion == nil {
			t.Fatal("no confusion matrix")
		}
		var total, correct int
		for i, row := range m.Confusion {
			for j, v := range row {
				total += v
				if i == j {
					correct += v
				}
			}
		}
		if total != 10000 || math.Abs(float64(correct)/float64(total)-acc) > 1e-9 {
			t.Errorf("confusion matrix of %d images, %d right; want 10,000 and accuracy %v", total, correct, acc)
		}
	})

	t.Run("page", func(t *testing.T) {
		for path, ct := range map[string]string{"/": "text/html", "/app.js": "text/javascript", "/style.css": "text/css"} {
			res, err := http.Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), ct) || !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("GET %s: %d %q, CSP %q", path, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Security-Policy"))
			}
		}
	})
}

// TestServePageIsSelfContained: the embedded page names nothing outside
// the server, so it works offline and leaks nothing.
func TestServePageIsSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import`)
	err := fs.WalkDir(web, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web, path)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers to %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func decodePrediction(t *testing.T, v map[string]any) prediction {
	t.Helper()
	b, _ := json.Marshal(v)
	var p prediction
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Probabilities) != data.NumClasses || len(p.Pixels) != data.ImageSize {
		t.Fatalf("%d probabilities and %d pixels, want 10 and 784", len(p.Probabilities), len(p.Pixels))
	}
	sum := 0.0
	for d, q := range p.Probabilities {
		sum += q
		if q > p.Probabilities[p.Digit] {
			t.Errorf("digit %d has probability %v, more than the answer %d's %v", d, q, p.Digit, p.Probabilities[p.Digit])
		}
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Errorf("probabilities sum to %v", sum)
	}
	return p
}

// predictDigit runs train -load model -predict file and returns the digit.
func predictDigit(t *testing.T, model, file string) int {
	t.Helper()
	code, stdout, stderr := runTrain(t, "-load", model, "-predict", file)
	if code != exitOK {
		t.Fatalf("-predict %s exited %d:\n%s", file, code, stderr)
	}
	var d int
	if _, err := fmt.Sscanf(strings.TrimPrefix(stdout, file+": "), "%d", &d); err != nil {
		t.Fatalf("-predict printed %q", stdout)
	}
	return d
}

// loadTestDigits returns the MNIST training and test sets.
func loadTestDigits(t *testing.T) (*data.Set, *data.Set) {
	t.Helper()
	train, test, err := data.Load(context.Background(), realDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return train, test
}

func TestServeUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"-serve", "127.0.0.1:0"}, // no model
		{"-load", "m.safetensors", "-serve", "nonsense"},
		{"-load", "m.safetensors", "-serve", "127.0.0.1:99999"},
		{"-load", "m.safetensors", "-serve", "127.0.0.1:0", "-epochs", "1"},
		{"-load", "m.safetensors", "-serve", "127.0.0.1:0", "-predict", "a.png"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := runTrain(t, args...)
			if code != exitUsage || !oneLine(stderr) {
				t.Errorf("exit code %d, want %d with one error line:\n%s", code, exitUsage, stderr)
			}
		})
	}
}

// TestServeCtrlC: the binary serves until SIGINT, then stops cleanly with
// exit code 0; a port in use is one error line and exit 1.
func TestServeCtrlC(t *testing.T) {
	saved := servedModel(t)
	url, stop := startServe(t, saved)
	res, err := http.Get(url + "api/model")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET /api/model: %d", res.StatusCode)
	}

	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	code, _, stderr := runTrain(t, "-load", saved, "-serve", addr)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := lines[len(lines)-1]; code != exitRuntime || !strings.HasPrefix(last, "train: serve:") || !strings.Contains(last, "address already in use") {
		t.Errorf("second server on %s: exit %d, last line %q; want 1 and the bind error", addr, code, last)
	}

	code, stderr = stop()
	if code != exitOK || !strings.Contains(stderr, "server stopped") {
		t.Errorf("after SIGINT: exit %d, want 0 and \"server stopped\":\n%s", code, stderr)
	}
}
