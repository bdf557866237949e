//go:build unix

package data

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestLoadSetUnreadable(t *testing.T) {
	dir := t.TempDir()
	lbl := writeFile(t, dir, "l.gz", labels(1))

	fifo := filepath.Join(dir, "fifo.gz")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	_, err := LoadSet(context.Background(), fifo, lbl)
	checkErr(t, err, nil, "not a regular file")

	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	img := writeFile(t, dir, "i.gz", images(1, 28, 28, 0))
	if err := os.Chmod(img, 0); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSet(context.Background(), img, lbl)
	checkErr(t, err, os.ErrPermission, img)
}
