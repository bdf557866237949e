// Command train trains the MNIST multilayer perceptron of the Keras spec
// with Gorgonia and reports its accuracy and loss on the 10,000 test images.
//
// Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
)

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitRuntime     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	// SIGHUP (the terminal closed) stops a run like Ctrl-C does: with a
	// checkpoint and the partial report, rather than killed mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, trains and reports, and
// returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		return exitOK
	}
	if err != nil {
		return fail(opts.logFormat, stderr, err, exitUsage)
	}
	log, err := newLogger(opts, stderr)
	if err != nil {
		return fail(opts.logFormat, stderr, err, exitUsage)
	}
	err = train(ctx, opts, log, stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return fail(opts.logFormat, stderr, errors.New("interrupted"), exitInterrupted)
	case errors.As(err, new(usageError)):
		return fail(opts.logFormat, stderr, err, exitUsage)
	default:
		return fail(opts.logFormat, stderr, err, exitRuntime)
	}
}

// fail reports the error that ends the run and returns its exit code. In
// text it is one line, "train: ...": the usage would bury it, and a usage
// error says what to change (an unknown flag, the nearest one). With
// -log-format json it is one JSON log entry like every other line on
// stderr, so that a program reading the log can read the failure too:
// level "error", msg the error, exit_code. (When the flags cannot be
// parsed, json applies only if -log-format json came before the bad flag.)
// An error of several lines (errors.Join's, say a failed step joined with
// a read of the running totals after it that failed for another reason, or
// a driver's log quoted in one) becomes one, its lines separated by "; ".
func fail(logFormat string, stderr io.Writer, err error, code int) int {
	msg := joinLines(err.Error())
	if logFormat != "json" {
		fmt.Fprintf(stderr, "train: %s\n", msg)
		return code
	}
	// A logger of its own: the run's may be set to a level above error.
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.WithField("exit_code", code).Error(msg)
	return code
}

// joinLines joins the non-blank lines of msg with "; ".
func joinLines(msg string) string {
	if !strings.ContainsAny(msg, "\r\n") {
		return msg
	}
	var kept []string
	for _, line := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.TrimSpace(line); line != "" {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "; ")
}
