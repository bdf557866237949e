package main

import (
	"io"
	"net/http"
)

// readBody reads r's body, at most limit bytes (more is an
// *http.MaxBytesError, which bodyError makes a 413). A body with a
// Content-Length is read into a buffer of exactly that size, so it costs
// what it declares and a declared size over the limit is refused unread;
// only a body sent without one (chunked) grows its buffer as it comes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := declaredTooLarge(r, limit); err != nil {
		return nil, err
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength < 0 {
		return io.ReadAll(body)
	}
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// declaredTooLarge is the *http.MaxBytesError of a body whose declared
// Content-Length is over limit, nil otherwise: such a body is refused
// without reading a byte of it.
func declaredTooLarge(r *http.Request, limit int64) error {
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: limit}
	}
	return nil
}
