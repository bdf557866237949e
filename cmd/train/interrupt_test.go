//go:build unix

package main

import (
	"bufio"
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interruptTrain runs the built binary with args, waits until its start-up
// "training" log entry has appeared and then for settle, sends sig, and
// returns the exit code with everything printed.
func interruptTrain(t *testing.T, sig syscall.Signal, settle time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read stderr as it streams, to know when training has begun.
	var logs strings.Builder
	training := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		started := false
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			logs.WriteString(line + "\n")
			if !started && (strings.Contains(line, `"msg":"training"`) || strings.Contains(line, "msg=training")) {
				started = true
				close(training)
			}
		}
	}()
	select {
	case <-training:
	case <-done:
		// Stderr closed: the process ended. Unless it got to training
		// first, there is nothing to interrupt (a GPU that would not
		// start, say): say so now rather than wait out the minutes below.
		select {
		case <-training:
		default:
			cmd.Wait()
			t.Fatalf("train exited before training began:\n%s", logs.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		t.Fatalf("no start-up log entry within 2 minutes:\n%s", logs.String())
	}
	time.Sleep(settle)
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-done // all of stderr read before Wait closes the pipe
	err = cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("after %v: wait: %v", sig, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), logs.String()
}
