package main

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"mnist/data"
)

// web holds the page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed web
var web embed.FS

// Request limits (docs/serve.md): an image upload may be a phone photo;
// 784 numbers as JSON need about 4 KiB, at most 16 KiB written long-hand.
// An image ends up 28×28, so the server decodes at most 2048×2048 pixels, a
// quarter of what -predict takes (data.MaxImagePixels): the largest image
// costs a quarter as much, and the page scales a larger file (a phone
// photo) down before sending it.
const (
	maxImageBody   = 8 << 20
	maxJSONBody    = 64 << 10
	maxServePixels = 2048 * 2048
)

// securityHeaders go on every response. The CSP keeps the page to its own
// files: nothing is loaded from elsewhere, and nothing inline runs.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
}

// modelInfo is the GET /api/model answer: the file's metadata as saved by
// -save (all strings), the confusion matrix decoded from it when present,
// and where the model runs.
type modelInfo struct {
	File      string            `json:"file"`
	Modified  time.Time         `json:"modified"`
	Device    string            `json:"device"`
	Metadata  map[string]string `json:"metadata"`
	Confusion *[10][10]int      `json:"confusion"`
}

func newModelInfo(loaded *loadedModel) (modelInfo, error) {
	st, err := os.Stat(loaded.path)
	if err != nil {
		return modelInfo{}, fmt.Errorf("model %s: %w", loaded.path, err)
	}
	info := modelInfo{File: filepath.Base(loaded.path), Modified: st.ModTime().UTC(), Metadata: loaded.meta}
	if s, ok := loaded.meta[confusionKey]; ok {
		// A file from an older build has none; a bad one is shown as none
		// rather than refused, since the weights are fine.
		var m [10][10]int
		if json.Unmarshal([]byte(s), &m) == nil {
			info.Confusion = &m
		}
	}
	return info, nil
}

// prediction is the POST /api/predict answer.
type prediction struct {
	Digit         int       `json:"digit"`
	Probabilities []float64 `json:"probabilities"`
	// Pixels is the 28×28 image the model saw, row-major, 0 (black) to 255
	// (white ink): the preprocessed upload, or the JSON pixels as given.
	Pixels []int `json:"pixels"`
}

// apiError is a failed request: the status and a one-line message, sent as
// {"error": msg}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// predictServer answers the API; gate bounds the images it works on at
// once.
type predictServer struct {
	c    classifier
	info modelInfo
	gate *imageGate
}

// newServeHandler is the whole site: the embedded page at / and the API.
func newServeHandler(c classifier, info modelInfo, gate *imageGate) (http.Handler, error) {
	s := &predictServer{c: c, info: info, gate: gate}
	page, err := fs.Sub(web, "web")
	if err != nil {
		return nil, fmt.Errorf("the embedded web page: %w", err)
	}
	mux := http.NewServeMux()
	files := http.FileServerFS(page)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("/api/predict", s.handlePredict)
	mux.HandleFunc("/api/model", s.handleModel)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, "no such API endpoint: " + r.URL.Path})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		mux.ServeHTTP(w, r)
	}), nil
}

func (s *predictServer) handleModel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &apiError{http.StatusMethodNotAllowed, "use GET"})
		return
	}
	writeJSON(w, http.StatusOK, s.info)
}

func (s *predictServer) handlePredict(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, &apiError{http.StatusMethodNotAllowed, "use POST with a PNG, a JPEG or JSON pixels"})
		return
	}
	var px []byte
	var err error
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "image/png", "image/jpeg":
		px, err = s.readImage(w, r)
	case "application/json":
		px, err = readPixels(w, r)
	default:
		err = &apiError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send image/png, image/jpeg or application/json", r.Header.Get("Content-Type"))}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	logProbs, err := s.c.classify(r.Context(), &data.Set{Images: px, Labels: make([]byte, 1)})
	if err != nil {
		writeError(w, err)
		return
	}
	p := prediction{Digit: topClasses(logProbs, 1)[0].Digit, Probabilities: make([]float64, data.NumClasses), Pixels: make([]int, data.ImageSize)}
	for d, lp := range logProbs {
		p.Probabilities[d] = math.Exp(lp)
	}
	for i, v := range px {
		p.Pixels[i] = int(v)
	}
	writeJSON(w, http.StatusOK, p)
}

// readImage preprocesses a PNG or JPEG body as -predict does a file, once
// the gate admits it; a declared size over the limit is refused first.
func (s *predictServer) readImage(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// Refused before it waits for admission, not only once admitted.
	if err := declaredTooLarge(r, maxImageBody); err != nil {
		return nil, bodyError("read the image", err)
	}
	if err := s.gate.enter(r.Context()); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	body, err := readBody(w, r, maxImageBody)
	if err != nil {
		return nil, bodyError("read the image", err)
	}
	var px []byte
	var decodeErr error
	if err := s.gate.decoding(r.Context(), func() { px, decodeErr = data.ImageBytesToMNISTWithin(body, maxServePixels) }); err != nil {
		return nil, err
	}
	switch {
	case errors.Is(decodeErr, data.ErrImageTooLarge):
		return nil, &apiError{http.StatusRequestEntityTooLarge, decodeErr.Error()}
	case decodeErr != nil:
		return nil, &apiError{http.StatusUnprocessableEntity, decodeErr.Error()}
	}
	return px, nil
}

// readPixels reads {"pixels": [784 numbers from 0 to 255]}, an image
// already in MNIST form (white digit on black, row-major): it is classified
// as it is, without preprocessing.
func readPixels(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	var req struct {
		Pixels []float64 `json:"pixels"`
	}
	if err := dec.Decode(&req); err != nil {
		return nil, bodyError("malformed JSON", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("more than one JSON value in the body")
		}
		return nil, bodyError("malformed JSON", err)
	}
	if len(req.Pixels) != data.ImageSize {
		return nil, &apiError{http.StatusBadRequest, fmt.Sprintf("pixels: want %d numbers (28×28), got %d", data.ImageSize, len(req.Pixels))}
	}
	px := make([]byte, data.ImageSize)
	ink := false
	for i, v := range req.Pixels {
		if v < 0 || v > 255 {
			return nil, &apiError{http.StatusBadRequest, fmt.Sprintf("pixels[%d] is %v: want 0 to 255", i, v)}
		}
		px[i] = byte(math.Round(v))
		ink = ink || px[i] != 0
	}
	if !ink {
		return nil, &apiError{http.StatusUnprocessableEntity, data.ErrBlankImage.Error()}
	}
	return px, nil
}

// bodyError is 413 for a body over its limit, else 400 with what went
// wrong: JSON that cannot be read, or a body cut short.
func bodyError(what string, err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the %d-byte limit", tooBig.Limit)}
	}
	return &apiError{http.StatusBadRequest, what + ": " + err.Error()}
}

// writeError answers err as {"error": msg}: an *apiError with its status,
// anything else as 500. A 503 says when to try again.
func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = &apiError{http.StatusInternalServerError, err.Error()}
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // a client gone away is not our error
}
