package data

import (
	"context"
	"errors"
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
	// answerTimeout bounds the wait for the response's headers as a whole,
	// whatever the client: through an HTTPS proxy, the wait for its answer
	// to CONNECT is none of the three above (Go's transport gives it a
	// minute), and a proxy that accepts and never answers would hold each
	// mirror that long.
	answerTimeout = dialTimeout + tlsTimeout + headerTimeout
)

// errNoAnswer is the cause of a request given up at answerTimeout.
var errNoAnswer = errors.New("no answer")

type httpSource struct {
	base   string
	client *http.Client
	answer time.Duration // answerTimeout; tests shorten it
}

// HTTPSource serves the files from baseURL (a folder URL; the file name is
// appended). A nil client gets one with connect, TLS and response-header
// timeouts and the proxy from the environment.
func HTTPSource(baseURL string, client *http.Client) Source {
	if client == nil {
		client = newHTTPClient()
	}
	return &httpSource{base: baseURL, client: client, answer: answerTimeout}
}

func (s *httpSource) Name() string { return s.base }

func (s *httpSource) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	u, err := url.JoinPath(s.base, file)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q + %q: %w", s.base, file, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("bad URL %q: %w", u, err)
	}
	// Ask for the stored bytes. Without this header Go's transport would
	// request gzip and transparently decompress a response sent with
	// Content-Encoding: gzip, and the digest of the .gz would never match.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "mnist-gorgonia")
	timer := time.AfterFunc(s.answer, func() { cancel(errNoAnswer) })
	resp, err := s.client.Do(req)
	if timedOut := !timer.Stop(); timedOut {
		// Given up, or answered just as the time ran out: too late either way.
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, fmt.Errorf("GET %s: no answer within %s (through the proxy, if one is set)", u, s.answer)
	}
	if err != nil {
		cancel(nil)
		return nil, err // *url.Error: already says "Get <url>: why"
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel(nil)
		return nil, &statusError{url: u, code: resp.StatusCode, status: resp.Status}
	}
	return cancelOnClose{resp.Body, cancel}, nil
}

// cancelOnClose is a response body that releases its request's context
// when closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
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
