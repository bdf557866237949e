package data

import (
	"context"
	"io"
	"net/http"
)

// Source is a place the MNIST files can be fetched from.
type Source interface {
	// Name identifies the source in logs and errors (a URL, say).
	Name() string
	// Open returns the content of one of the four files (the .gz bytes).
	// Reading the body must fail once ctx is done, so that a stalled
	// transfer is bounded by the Fetcher's timeout.
	Open(ctx context.Context, file string) (io.ReadCloser, error)
}

// Mirrors of the original files, in the order they are tried. yann.lecun.com
// itself now answers 403/404.
const (
	ossciMirror = "https://ossci-datasets.s3.amazonaws.com/mnist/" // torchvision's
	cvdfMirror  = "https://storage.googleapis.com/cvdf-datasets/mnist/"
)

// DefaultSources: https://ossci-datasets.s3.amazonaws.com/mnist/ ,
// https://storage.googleapis.com/cvdf-datasets/mnist/ , then the Go module
// proxy copy (which works wherever `go build` can fetch modules). A nil
// client gets one with connect and header timeouts (see HTTPSource).
func DefaultSources(client *http.Client) []Source {
	if client == nil {
		client = newHTTPClient()
	}
	return []Source{
		HTTPSource(ossciMirror, client),
		HTTPSource(cvdfMirror, client),
		GoProxySource(""),
	}
}
