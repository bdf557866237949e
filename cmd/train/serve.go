package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Server limits. The timeouts bound what a slow or stalled client can hold:
// a phone uploading an 8 MiB photo over a poor link needs seconds, not
// minutes, and an idle keep-alive connection is dropped after two minutes.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// shutdownGrace is how long Ctrl-C waits for requests in progress.
	shutdownGrace = 5 * time.Second
)

// serve runs the -serve web page and JSON API on o.serveAddr with the -load
// model until ctx is cancelled (Ctrl-C or SIGTERM), then shuts the server
// down gracefully. Stopping it that way is its normal end, not an
// interruption that lost work, so it returns nil and the exit code is 0.
func serve(ctx context.Context, o options, loaded *loadedModel, log *logrus.Logger, stdout io.Writer) error {
	info, err := newModelInfo(loaded)
	if err != nil {
		return err
	}
	c, err := openClassifier(o, loaded, log)
	if err != nil {
		return err
	}
	defer c.close()
	info.Device = c.device()

	handler, err := newServeHandler(c, info, newImageGate(defaultDecodeSlots(), admitWait))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.serveAddr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	errLog := log.WriterLevel(logrus.WarnLevel)
	defer errLog.Close()
	srv := newHTTPServer(handler, stdlog.New(errLog, "", 0))
	url := serverURL(ln.Addr())
	log.WithFields(logrus.Fields{"url": url, "model": loaded.path, "device": info.Device}).Info("serving")
	if o.logFormat == "text" {
		fmt.Fprintf(stdout, "Serving %s on %s  (Ctrl-C to stop)\n", loaded.path, url)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.WithError(err).Warn("requests still running after the grace period were cut off")
		srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("server stopped")
	return nil
}

// newHTTPServer is the server with its timeouts; errLog takes the
// connection errors net/http reports (nil: the standard logger).
func newHTTPServer(h http.Handler, errLog *stdlog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errLog,
	}
}

// serverURL is the address to open in a browser: a server listening on all
// interfaces (":8080") is reached on this machine as localhost.
func serverURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(strings.Trim(host, "[]"), port) + "/"
}
