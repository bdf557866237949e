package data

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Timeouts of the default HTTP client. They bound the parts of a request
// that hang when a mirror is unreachable, so falling back to the next source
// takes seconds; the whole transfer is bounded by Fetcher.Timeout instead,
// which must leave room for 10 MB on a slow link.
const (
	dialTimeout   = 10 * time.Second
	tlsTimeout    = 10 * time.Second
	headerTimeout = 30 * time.Second
)

type httpSource struct {
	base   string
	client *http.Client
}

// HTTPSource serves the files from baseURL (a folder URL; the file name is
// appended). A nil client gets one with connect, TLS and response-header
// timeouts and the proxy from the environment.
func HTTPSource(baseURL string, client *http.Client) Source {
	if client == nil {
		client = newHTTPClient()
	}
	return &httpSource{base: baseURL, client: client}
}

func (s *httpSource) Name() string { return s.base }

func (s *httpSource) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	u, err := url.JoinPath(s.base, file)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q + %q: %w", s.base, file, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", u, err)
	}
	// Ask for the stored bytes. Without this header Go's transport would
	// request gzip and transparently decompress a response sent with
	// Content-Encoding: gzip, and the digest of the .gz would never match.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "mnist-gorgonia")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err // *url.Error: already says "Get <url>: why"
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &statusError{url: u, code: resp.StatusCode, status: resp.Status}
	}
	return resp.Body, nil
}

// statusError is a response other than 200 OK. Kept as a type so the
// fetcher can retry 5xx and give up at once on 404.
type statusError struct {
	url    string
	code   int
	status string
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: %s", e.url, e.status) }

func newHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   tlsTimeout,
		ResponseHeaderTimeout: headerTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          4,
	}}
}
