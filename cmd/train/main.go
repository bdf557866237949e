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
	"syscall"
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
		fmt.Fprintf(stderr, "train: %v\n", err)
		fmt.Fprintln(stderr, usageLine)
		return exitUsage
	}
	log, err := newLogger(opts, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "train: %v\n", err)
		fmt.Fprintln(stderr, usageLine)
		return exitUsage
	}
	err = train(ctx, opts, log, stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "train: interrupted")
		return exitInterrupted
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "train: %v\n", err)
		fmt.Fprintln(stderr, usageLine)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "train: %v\n", err)
		return exitRuntime
	}
}
