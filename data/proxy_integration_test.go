package data

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestGoProxyIntegration fetches the real files through `go mod download`
// (from the module cache, or from the network if it is not there) and loads
// them. Run with MNIST_INTEGRATION=1; plain `go test` stays offline.
func TestGoProxyIntegration(t *testing.T) {
	if os.Getenv("MNIST_INTEGRATION") != "1" {
		t.Skip("set MNIST_INTEGRATION=1 to fetch the real MNIST files")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := &Fetcher{Sources: []Source{GoProxySource("")}}
	if err := f.Ensure(ctx, dir); err != nil {
		t.Fatal(err)
	}
	train, test, err := Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != TrainImages || test.Len() != TestImages {
		t.Fatalf("got %d training and %d test images, want %d and %d", train.Len(), test.Len(), TrainImages, TestImages)
	}
	var counts [NumClasses]int
	for _, l := range train.Labels {
		counts[l]++
	}
	for digit, c := range counts {
		if c < 5000 || c > 7000 { // MNIST has 5421..6742 of each digit
			t.Errorf("digit %d appears %d times", digit, c)
		}
	}

	// Second run: everything is present, so no source may be asked.
	src := &openCounter{}
	if err := (&Fetcher{Sources: []Source{src}}).Ensure(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if src.calls.Load() != 0 {
		t.Error("downloaded again although all files were present")
	}

	// GOFLAGS set with `go env -w` that make no sense outside a module
	// (here -modfile) must not break the download.
	goenv := filepath.Join(t.TempDir(), "goenv")
	if err := os.WriteFile(goenv, []byte("GOFLAGS=-modfile=/nonexistent/go.mod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOENV", goenv)
	fresh := &Fetcher{Sources: []Source{GoProxySource("")}} // runs go again
	if err := fresh.Ensure(ctx, t.TempDir()); err != nil {
		t.Errorf("with GOFLAGS=-modfile set by go env -w: %v", err)
	}
}
