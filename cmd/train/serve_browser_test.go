//go:build unix

package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"mnist/data"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "TestServeBrowser writes docs/serve.png")

// pageResult is what the page shows after a prediction.
type pageResult struct {
	State   string    `json:"state"`
	Version string    `json:"version"`
	Digit   string    `json:"digit"`
	Probs   []float64 `json:"probs"`  // data-probability of the 10 bars
	Widths  []float64 `json:"widths"` // their drawn widths, in pixels
	Track   float64   `json:"track"`  // the width of a full bar
	Seen    []int     `json:"seen"`   // the 28×28 canvas, red channel
}

const readResultJS = `(() => {
	const r = document.getElementById('result');
	const bars = [...document.querySelectorAll('#bars .bar')];
	const seen = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;
	return {
		state: r.dataset.state, version: r.dataset.version,
		digit: document.getElementById('digit').textContent,
		probs: bars.map(b => Number(b.dataset.probability || 0)),
		widths: bars.map(b => b.querySelector('.fill').getBoundingClientRect().width),
		track: bars[0].querySelector('.track').getBoundingClientRect().width,
		seen: Array.from({length: 784}, (_, i) => seen[4 * i]),
	};
})()`

// TestServeBrowser draws MNIST test digits on the page in headless
// Chromium with real (CDP-dispatched) mouse input, and checks that the
// page shows what -predict says of the PNG of its canvas; then Clear, the
// upload, and the layout on a phone-sized screen.
func TestServeBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium): the browser test needs it")
	}
	saved := servedModel(t)
	_, test := loadTestDigits(t)
	url, stop := startServe(t, saved)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1040, 820))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts Chromium
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) pageResult {
		t.Helper()
		r, err := chromedp.Run(ctx, chromedp.Evaluate[pageResult](js))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		return r
	}
	// pointerTypesJS records the kinds of pointer that reach the pad, to
	// show that mouse, pen and touch input all draw.
	const pointerTypesJS = `window.pointerTypes = new Set();
		document.getElementById('pad').addEventListener('pointerdown', e => window.pointerTypes.add(e.pointerType))`
	do("open the page", chromedp.EmulateViewport(1040, 820), chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#pad")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#facts dd').length > 0 && document.querySelector('#confusion table') !== null`))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](pointerTypesJS+"; undefined")); err != nil && !errors.Is(err, chromedp.ErrJSUndefined) {
		t.Fatal(err)
	}
	pointerTypes := func() string {
		t.Helper()
		types, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...window.pointerTypes].sort()`))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(types, " ")
	}

	// waitReady waits for the prediction of the pad as it now is.
	waitReady := func() pageResult {
		t.Helper()
		v := eval(readResultJS).Version
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](
			`(r => r.dataset.state !== 'pending' && r.dataset.version === `+strconv.Quote(v)+`)(document.getElementById('result'))`,
			chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			t.Fatalf("no prediction shown for version %s: %v", v, err)
		}
		return eval(readResultJS)
	}

	dir := t.TempDir()
	// Test images of 7, 2, 1, 0, 4 and 9; right counts those shown as
	// their label.
	right := 0
	for _, k := range []int{0, 1, 2, 3, 4, 7} {
		px := test.Images[k*data.ImageSize : (k+1)*data.ImageSize]
		do("clear", chromedp.Click(chromedp.CSS("#clear")))
		do("draw", traceDigit(t, ctx, px))
		got := waitReady()
		if got.State != "ready" {
			t.Fatalf("digit %d (test image %d): the page is in state %q", test.Labels[k], k, got.State)
		}
		canvas := canvasPNG(t, ctx)
		file := filepath.Join(dir, "canvas"+strconv.Itoa(k)+".png")
		if err := os.WriteFile(file, canvas, 0o644); err != nil {
			t.Fatal(err)
		}
		want := predictDigit(t, saved, file)
		t.Logf("drew test image %d (a %d): the page shows %s, -predict on its canvas says %d", k, test.Labels[k], got.Digit, want)
		if got.Digit != strconv.Itoa(want) {
			t.Errorf("test image %d: the page shows %q, -predict on the canvas PNG says %d", k, got.Digit, want)
		}
		if got.Digit == strconv.Itoa(int(test.Labels[k])) {
			right++
		}
		checkBars(t, got)
		seen, err := data.ImageBytesToMNIST(canvas)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range seen {
			if got.Seen[i] != int(v) {
				t.Fatalf("test image %d: the 28×28 view's pixel %d is %d, the model saw %d", k, i, got.Seen[i], v)
			}
		}
	}
	if right < 5 {
		t.Errorf("only %d of the 6 traced test digits shown as their label", right)
	}

	// One continuous stroke, drawn as a hand would, with a pen: a 3 in
	// many small moves. It is the digit of the screenshot.
	do("clear", chromedp.Click(chromedp.CSS("#clear")))
	do("draw a 3", strokeDigit(t, ctx, handThree, "pen"))
	got := waitReady()
	if got.State != "ready" {
		t.Fatalf("a 3 drawn with a pen: the page is in state %q", got.State)
	}
	file := filepath.Join(dir, "three.png")
	if err := os.WriteFile(file, canvasPNG(t, ctx), 0o644); err != nil {
		t.Fatal(err)
	}
	if want := predictDigit(t, saved, file); got.State != "ready" || got.Digit != strconv.Itoa(want) {
		t.Errorf("hand-drawn 3: state %q, the page shows %q, -predict on the canvas PNG says %d", got.State, got.Digit, want)
	}
	t.Logf("hand-drawn 3: the page shows %s", got.Digit)
	checkBars(t, got)
	if types := pointerTypes(); types != "mouse pen" {
		t.Errorf("the pad saw pointers %q, want mouse and pen", types)
	}
	if *updateScreenshot {
		do("viewport", chromedp.EmulateViewport(1040, 650))
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "serve.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("clear", func(t *testing.T) {
		do("clear", chromedp.Click(chromedp.CSS("#clear")))
		got := eval(readResultJS)
		blank, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
			const p = document.getElementById('pad');
			return p.getContext('2d').getImageData(0, 0, p.width, p.height).data.every(v => v === 255);
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if got.State != "empty" || got.Digit != "–" || !blank {
			t.Errorf("after Clear: state %q, digit %q, canvas blank %v", got.State, got.Digit, blank)
		}
		for d, w := range got.Widths {
			if w != 0 {
				t.Errorf("after Clear bar %d is %v px wide", d, w)
			}
		}
	})

	t.Run("upload", func(t *testing.T) {
		for _, k := range []int{5, 6} {
			file := filepath.Join(dir, "upload"+strconv.Itoa(k)+".png")
			writePNG(t, file, darkOnLight(test.Images[k*data.ImageSize:(k+1)*data.ImageSize], 3, 130, 110))
			do("upload", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
			got := waitReady()
			want := predictDigit(t, saved, file)
			if got.State != "ready" || got.Digit != strconv.Itoa(want) {
				t.Errorf("uploaded test image %d: state %q, digit %q; -predict says %d", k, got.State, got.Digit, want)
			}
			checkBars(t, got)
		}
		// A file of the wrong type is refused with the server's message.
		file := filepath.Join(dir, "notes.txt")
		if err := os.WriteFile(file, []byte("not a digit"), 0o644); err != nil {
			t.Fatal(err)
		}
		do("upload text", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
		got := waitReady()
		status, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if got.State != "error" || !strings.Contains(status, "Content-Type") {
			t.Errorf("uploaded a text file: state %q, status %q; want the server's error", got.State, status)
		}
	})

	// A photo over the server's 2048×2048 pixels (6 megapixels here, a
	// JPEG as a phone takes) is scaled down by the page before it is sent:
	// sent as it is, it would be refused with a 413.
	t.Run("large photo", func(t *testing.T) {
		file := filepath.Join(dir, "photo.jpg")
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := jpeg.Encode(f, darkOnLight(test.Images[3*data.ImageSize:4*data.ImageSize], 60, 3000, 2000), &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		do("upload a large photo", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
		got := waitReady()
		status, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if want := predictDigit(t, saved, file); got.State != "ready" || got.Digit != strconv.Itoa(want) {
			t.Errorf("uploaded a 3000×2000 photo of test image 3: state %q, digit %q, status %q; -predict says %d", got.State, got.Digit, status, want)
		}
	})

	t.Run("drop", func(t *testing.T) {
		file := filepath.Join(dir, "drop.png")
		writePNG(t, file, darkOnLight(test.Images[8*data.ImageSize:9*data.ImageSize], 4, 140, 120))
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// A drop event as the browser makes for a file dragged from the
		// desktop (which CDP cannot drag): a DataTransfer holding the file.
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
			const bytes = Uint8Array.from(atob('`+base64.StdEncoding.EncodeToString(b)+`'), c => c.charCodeAt(0));
			const dt = new DataTransfer();
			dt.items.add(new File([bytes], 'drop.png', {type: 'image/png'}));
			return document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		got := waitReady()
		if want := predictDigit(t, saved, file); got.State != "ready" || got.Digit != strconv.Itoa(want) {
			t.Errorf("dropped test image 8: state %q, digit %q; -predict says %d", got.State, got.Digit, want)
		}
	})

	// A pad PNG whose toBlob callback comes back after a file was dropped
	// is for an older drawing: it must not abort the file's request (the
	// page would stay pending). The callbacks are held and run right after
	// the drop, in the same task, while the file's request is in flight.
	t.Run("stale pad callback", func(t *testing.T) {
		file := filepath.Join(dir, "after-drawing.png")
		writePNG(t, file, darkOnLight(test.Images[9*data.ImageSize:10*data.ImageSize], 4, 140, 120))
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = chromedp.Run(ctx, chromedp.Evaluate[int](`(() => {
			window.heldToBlob = [];
			window.realToBlob = HTMLCanvasElement.prototype.toBlob;
			HTMLCanvasElement.prototype.toBlob = function (cb) { window.heldToBlob.push(cb); };
			return 0;
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		do("draw, sending the pad", chromedp.Click(chromedp.CSS("#clear")), strokeDigit(t, ctx, handThree, "mouse"),
			chromedp.Poll[chromedp.Void](`window.heldToBlob.length > 0`, chromedp.WithPollingTimeout(10*time.Second)))
		_, err = chromedp.Run(ctx, chromedp.Evaluate[int](`(() => {
			HTMLCanvasElement.prototype.toBlob = window.realToBlob;
			const bytes = Uint8Array.from(atob('`+base64.StdEncoding.EncodeToString(b)+`'), c => c.charCodeAt(0));
			const dt = new DataTransfer();
			dt.items.add(new File([bytes], 'after-drawing.png', {type: 'image/png'}));
			document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
			for (const cb of window.heldToBlob) cb(new Blob([bytes], {type: 'image/png'}));
			return window.heldToBlob.length;
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		got := waitReady()
		if want := predictDigit(t, saved, file); got.State != "ready" || got.Digit != strconv.Itoa(want) {
			t.Errorf("a file dropped while the pad was being sent: state %q, digit %q; -predict says %d", got.State, got.Digit, want)
		}
	})

	t.Run("phone", func(t *testing.T) {
		do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile), chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS("#pad")))
		fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth &&
			document.getElementById('pad').getBoundingClientRect().width >= 250`))
		if err != nil {
			t.Fatal(err)
		}
		if !fits {
			t.Error("on a 390 px wide screen the page scrolls sideways or the pad is too small")
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](pointerTypesJS+"; undefined")); err != nil && !errors.Is(err, chromedp.ErrJSUndefined) {
			t.Fatal(err)
		}
		do("draw a 3 by touch", strokeDigit(t, ctx, handThree, "touch"))
		got := waitReady()
		if got.State != "ready" {
			t.Fatalf("a 3 drawn by touch: the page is in state %q", got.State)
		}
		file := filepath.Join(dir, "touch.png")
		if err := os.WriteFile(file, canvasPNG(t, ctx), 0o644); err != nil {
			t.Fatal(err)
		}
		if want := predictDigit(t, saved, file); got.State != "ready" || got.Digit != strconv.Itoa(want) {
			t.Errorf("3 drawn by touch: state %q, digit %q; -predict on the canvas says %d", got.State, got.Digit, want)
		}
		if types := pointerTypes(); types != "touch" {
			t.Errorf("the pad saw pointers %q, want touch", types)
		}
	})

	if code, stderr := stop(); code != exitOK {
		t.Errorf("-serve exited %d after SIGINT:\n%s", code, stderr)
	}
}

// traceDigit draws an MNIST image on the pad, scaled 10× (the pad is 280
// pixels for 28): one stroke along each horizontal run of ink in each row,
// pressed, moved and released as a mouse would.
func traceDigit(t *testing.T, ctx context.Context, px []byte) chromedp.Action[chromedp.Void] {
	t.Helper()
	rect, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(r => [r.left, r.top, r.width, r.height])(document.getElementById('pad').getBoundingClientRect())`))
	if err != nil {
		t.Fatal(err)
	}
	at := func(x, y int) (float64, float64) {
		return rect[0] + (float64(x)+0.5)*rect[2]/data.ImageCols, rect[1] + (float64(y)+0.5)*rect[3]/data.ImageRows
	}
	left := func(p *input.DispatchMouseEventParams) { p.Button, p.Buttons = input.MouseButtonLeft, 1 }
	var steps []chromedp.Action[chromedp.Void]
	for y := range data.ImageRows {
		for x := 0; x < data.ImageCols; x++ {
			if px[y*data.ImageCols+x] < 128 {
				continue
			}
			x1 := x
			for x1+1 < data.ImageCols && px[y*data.ImageCols+x1+1] >= 128 {
				x1++
			}
			ax, ay := at(x, y)
			bx, by := at(x1, y)
			steps = append(steps,
				chromedp.MouseEvent(chromedp.MousePressed, ax, ay, left, chromedp.ClickCount(1)),
				chromedp.MouseEvent(chromedp.MouseMoved, bx, by, left),
				chromedp.MouseEvent(chromedp.MouseReleased, bx, by, left, chromedp.ClickCount(1)))
			x = x1
		}
	}
	return chromedp.Steps(steps...)
}

// handThree is a 3 in the pad's 28×28 grid, as one stroke: the upper bowl
// down to the middle, then the lower bowl.
var handThree = [][2]float64{
	{8.5, 7}, {10.5, 5}, {13.5, 4.2}, {16.5, 4.8}, {18.5, 6.8}, {18.8, 9.2}, {17.3, 11.4}, {14.8, 12.8}, {12.5, 13.2},
	{15.5, 13.6}, {18.3, 15.2}, {19.6, 17.8}, {19.2, 20.6}, {17.2, 22.8}, {14, 23.9}, {10.8, 23.5}, {8.3, 21.8},
}

// strokeDigit draws points (in the 28×28 grid) as one stroke of the given
// pointer ("mouse", "pen" or "touch"): down at the first point, moved in
// steps of about 2 pad pixels, up at the last.
func strokeDigit(t *testing.T, ctx context.Context, points [][2]float64, pointer string) chromedp.Action[chromedp.Void] {
	t.Helper()
	rect, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(r => [r.left, r.top, r.width, r.height])(document.getElementById('pad').getBoundingClientRect())`))
	if err != nil {
		t.Fatal(err)
	}
	at := func(p [2]float64) [2]float64 {
		return [2]float64{rect[0] + p[0]*rect[2]/data.ImageCols, rect[1] + p[1]*rect[3]/data.ImageRows}
	}
	path := [][2]float64{at(points[0])}
	for i := 1; i < len(points); i++ {
		for k := 1; k <= 5; k++ {
			f := float64(k) / 5
			path = append(path, at([2]float64{points[i-1][0] + f*(points[i][0]-points[i-1][0]), points[i-1][1] + f*(points[i][1]-points[i-1][1])}))
		}
	}
	var steps []chromedp.Action[chromedp.Void]
	if pointer == "touch" {
		touch := func(typ input.DispatchTouchEventType, p *[2]float64) chromedp.Action[chromedp.Void] {
			params := input.DispatchTouchEventParams{Type: typ, TouchPoints: []*input.TouchPoint{}}
			if p != nil {
				params.TouchPoints = []*input.TouchPoint{{X: p[0], Y: p[1]}}
			}
			return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, input.DispatchTouchEvent, params)
				return err
			})
		}
		steps = append(steps, touch(input.DispatchTouchEventTypeTouchStart, &path[0]))
		for i := 1; i < len(path); i++ {
			steps = append(steps, touch(input.DispatchTouchEventTypeTouchMove, &path[i]))
		}
		return chromedp.Steps(append(steps, touch(input.DispatchTouchEventTypeTouchEnd, nil))...)
	}
	down := func(p *input.DispatchMouseEventParams) {
		p.Button, p.Buttons, p.PointerType = input.MouseButtonLeft, 1, input.DispatchMouseEventPointerType(pointer)
	}
	last := path[len(path)-1]
	steps = append(steps, chromedp.MouseEvent(chromedp.MousePressed, path[0][0], path[0][1], down, chromedp.ClickCount(1)))
	for _, p := range path[1:] {
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, p[0], p[1], down))
	}
	return chromedp.Steps(append(steps, chromedp.MouseEvent(chromedp.MouseReleased, last[0], last[1], down, chromedp.ClickCount(1)))...)
}

// canvasPNG is the pad as the PNG the page sends.
func canvasPNG(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	url, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('pad').toDataURL('image/png')`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkBars: 10 bars, each as wide as its probability of the full width
// (to a pixel), so ordered as the probabilities, the widest the digit shown.
func checkBars(t *testing.T, r pageResult) {
	t.Helper()
	if len(r.Probs) != 10 || len(r.Widths) != 10 {
		t.Fatalf("%d bars with %d widths, want 10", len(r.Probs), len(r.Widths))
	}
	widest := 0
	for d := range 10 {
		if want := r.Probs[d] * r.Track; r.Widths[d] < want-1 || r.Widths[d] > want+1 {
			t.Errorf("bar %d is %.1f px wide for probability %.4f of %.0f px", d, r.Widths[d], r.Probs[d], r.Track)
		}
		if r.Widths[d] > r.Widths[widest] {
			widest = d
		}
		for e := range 10 {
			if r.Probs[d] > r.Probs[e]+0.01 && r.Widths[d] <= r.Widths[e] {
				t.Errorf("bar %d (p=%.3f) is not wider than bar %d (p=%.3f)", d, r.Probs[d], e, r.Probs[e])
			}
		}
	}
	if strconv.Itoa(widest) != r.Digit {
		t.Errorf("the widest bar is %d, the digit shown %s", widest, r.Digit)
	}
}
