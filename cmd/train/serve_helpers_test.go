//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	be "encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	stdlog "log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"mnist/gpu"
	"mnist/model"
)

// servedModel trains a model for the serve tests once per test binary
// (2 epochs at batch 128, a few seconds) into the folder TestMain made and
// removes, and returns its path. MNIST comes as for the other tests: from
// the default data folder, downloaded when missing.
func servedModel(t testing.TB) string {
	t.Helper()
	path := filepath.Join(filepath.Dir(binary), "served.safetensors")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	dir := realDataDir(t)
	out, err := exec.Command(binary, "-data-dir", dir, "-epochs", "2", "-batch-size", "128", "-save", path, "-log-format", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("train -save: %v\n%s", err, out)
	}
	return path
}

// openTestClassifier opens the classifier -serve would for the model file.
func openTestClassifier(t testing.TB, path string) (*engineClassifier, modelInfo) {
	t.Helper()
	o := options{cfg: model.DefaultConfig(), engine: gpu.EngineGorgonia, loadPath: path, logFormat: "text"}
	loaded, err := prepareSaveLoad(context.Background(), &o)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	c, err := openClassifier(o, loaded, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	info, err := newModelInfo(loaded)
	if err != nil {
		t.Fatal(err)
	}
	info.Device = c.device()
	return c, info
}

// newTestServer serves the site on 127.0.0.1 with the real server settings
// (timeouts, limits).
func newTestServer(t testing.TB, c classifier, info modelInfo) *httptest.Server {
	t.Helper()
	h, err := newServeHandler(c, info, newImageGate(defaultDecodeSlots(), admitWait))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config = newHTTPServer(h, stdlog.New(io.Discard, "", 0))
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugeHeaderPNG is a valid 1×1 PNG whose header (checksum fixed up) claims
// w×h pixels, as a decompression bomb does.
func hugeHeaderPNG(t testing.TB, w, h uint32) []byte {
	b := pngBytes(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	be.BigEndian.PutUint32(b[16:], w)
	be.BigEndian.PutUint32(b[20:], h)
	be.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// startServe runs the built binary with -serve on a free port and returns
// the URL it prints. stop sends SIGINT, as Ctrl-C does, and returns the
// exit code and stderr.
func startServe(t *testing.T, model string) (url string, stop func() (int, string)) {
	t.Helper()
	cmd := exec.Command(binary, "-load", model, "-serve", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
	}()
	select {
	case line := <-lines:
		i := strings.Index(line, "http://")
		j := strings.Index(line, "  (Ctrl-C")
		if i < 0 || j < i {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("-serve printed %q, want its URL; stderr:\n%s", line, stderr.String())
		}
		url = line[i:j]
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("-serve printed no URL in 30 s; stderr:\n%s", stderr.String())
	}
	stopped := false
	stop = func() (int, string) {
		stopped = true
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("-serve did not stop within 15 s of SIGINT; stderr:\n%s", stderr.String())
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return url, stop
}
