package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// unreadable is a body that fails the test if it is read.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.EOF
}

func TestServeReadBody(t *testing.T) {
	const limit = 1000
	cases := []struct {
		name          string
		body          []byte
		contentLength int64 // -1: sent without one (chunked)
		wantErr       error // checked with errors.Is; MaxBytesError with errors.As
		wantCap       int   // the buffer's capacity, when it is known
	}{
		{name: "declared", body: bytes.Repeat([]byte{7}, 700), contentLength: 700, wantCap: 700},
		{name: "declared, at the limit", body: bytes.Repeat([]byte{7}, limit), contentLength: limit, wantCap: limit},
		{name: "declared empty", contentLength: 0, wantCap: 0},
		{name: "declared over the limit", contentLength: limit + 1, wantErr: &http.MaxBytesError{}},
		{name: "shorter than declared", body: make([]byte, 10), contentLength: 20, wantErr: io.ErrUnexpectedEOF},
		{name: "chunked", body: bytes.Repeat([]byte{7}, 700), contentLength: -1},
		{name: "chunked over the limit", body: make([]byte, limit+1), contentLength: -1, wantErr: &http.MaxBytesError{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(c.body)
			if c.contentLength > limit {
				body = unreadable{t}
			}
			r := httptest.NewRequest(http.MethodPost, "/api/predict", body)
			r.ContentLength = c.contentLength
			got, err := readBody(httptest.NewRecorder(), r, limit)
			var tooBig *http.MaxBytesError
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case c.wantErr == nil:
				if !bytes.Equal(got, c.body) {
					t.Errorf("read %d bytes, want the %d sent", len(got), len(c.body))
				}
				if c.contentLength >= 0 && cap(got) != c.wantCap {
					t.Errorf("a buffer of %d bytes for a body of %d", cap(got), c.wantCap)
				}
			case errors.As(c.wantErr, &tooBig):
				if !errors.As(err, &tooBig) || tooBig.Limit != limit {
					t.Errorf("error %v, want an *http.MaxBytesError with the limit %d", err, limit)
				}
			case !errors.Is(err, c.wantErr):
				t.Errorf("error %v, want %v", err, c.wantErr)
			}
		})
	}
}
