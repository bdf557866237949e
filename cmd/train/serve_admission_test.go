//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mnist/data"
)

// sureOfThree is a classifier that always answers 3.
type sureOfThree struct{}

func (sureOfThree) classify(context.Context, *data.Set) ([]float64, error) {
	lp := make([]float64, data.NumClasses)
	for d := range lp {
		lp[d] = math.Inf(-1)
	}
	lp[3] = 0
	return lp, nil
}
func (sureOfThree) device() string { return "test" }
func (sureOfThree) close()         {}

// barPNG is a small PNG with something to classify: a light bar on black.
func barPNG(t *testing.T) []byte {
	img := image.NewGray(image.Rect(0, 0, 40, 40))
	for y := 8; y < 32; y++ {
		for x := 18; x < 22; x++ {
			img.Pix[y*img.Stride+x] = 255
		}
	}
	return pngBytes(t, img)
}

// onRead is a body that calls f before its first read.
type onRead struct {
	r    io.Reader
	f    func()
	done bool
}

func (o *onRead) Read(p []byte) (int, error) {
	if !o.done {
		o.done = true
		o.f()
	}
	return o.r.Read(p)
}

// TestServeAPIAdmission: with every admission slot held, an image is
// answered 503 with Retry-After after the gate's wait, while JSON pixels
// and a body declared too large are answered as usual; a request holds a
// slot while it reads its body, and frees it after.
func TestServeAPIAdmission(t *testing.T) {
	gate := newImageGate(1, 10*time.Millisecond)
	h, err := newServeHandler(sureOfThree{}, modelInfo{}, gate)
	if err != nil {
		t.Fatal(err)
	}
	bar := barPNG(t)
	pixels := make([]float64, data.ImageSize)
	pixels[400] = 255

	release := fill(gate)
	cases := []struct {
		name        string
		contentType string
		body        io.Reader
		length      int64 // Content-Length; 0: that of body
		status      int
		says        string
	}{
		{"image while busy", "image/png", bytes.NewReader(bar), 0, 503, "busy"},
		{"JSON pixels while busy", "application/json", bytes.NewReader(pixelsJSON(pixels)), 0, 200, ""},
		{"image declared over the limit while busy", "image/png", unreadable{t}, maxImageBody + 1, 413, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/predict", c.body)
			r.Header.Set("Content-Type", c.contentType)
			if c.length != 0 {
				r.ContentLength = c.length
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var v map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("answer %q is not JSON", w.Body)
			}
			msg, _ := v["error"].(string)
			if w.Code != c.status || !strings.Contains(msg, c.says) || strings.Contains(msg, "\n") {
				t.Errorf("%d %v, want %d saying %q in one line", w.Code, v, c.status, c.says)
			}
			if ra := w.Header().Get("Retry-After"); (c.status == 503) != (ra == retryAfter) {
				t.Errorf("status %d with Retry-After %q; want %q on a 503 only", w.Code, ra, retryAfter)
			}
		})
	}

	// One slot free: a request holds it while it reads its body and frees
	// it after, however the read ends.
	release()
	for _, c := range []struct {
		name   string
		body   []byte
		length int64 // Content-Length; -1: none (chunked)
		status int
	}{
		{"image once a slot is free", bar, int64(len(bar)), 200},
		{"image sent without a length", bar, -1, 200},
		{"image cut short", bar[:10], int64(len(bar)), 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			held := -1
			r := httptest.NewRequest(http.MethodPost, "/api/predict", &onRead{r: bytes.NewReader(c.body), f: func() { held = len(gate.admit) }})
			r.Header.Set("Content-Type", "image/png")
			r.ContentLength = c.length
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Errorf("%d %s, want %d", w.Code, w.Body, c.status)
			}
			if want := cap(gate.admit); held != want {
				t.Errorf("%d of %d admission slots held while the body was read, want %d", held, cap(gate.admit), want)
			}
			if want := cap(gate.admit) - 1; len(gate.admit) != want {
				t.Errorf("%d admission slots held after the answer, want the test's %d", len(gate.admit), want)
			}
		})
	}
}
