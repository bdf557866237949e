//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mnist/data"
	"mnist/data/fileio"
	"mnist/model"
)

// runGuarded calls run in this process, as main does, and fails the test
// if it has not returned within 60 s: a FIFO that blocked a read would
// otherwise hang the suite.
func runGuarded(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), args, &out, &errb) }()
	select {
	case code = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("run %q still going after 60 s", args)
	}
	return code, out.String(), errb.String()
}

// logTrigger is a run's stderr that calls do once, as the first log entry
// containing when is written. logrus writes an entry with one Write, on the
// goroutine that logs it, so do runs at that point of the run and the run
// waits for it.
type logTrigger struct {
	buf  bytes.Buffer
	when string
	do   func()
	done bool
}

func (w *logTrigger) Write(p []byte) (int, error) {
	if !w.done && bytes.Contains(p, []byte(w.when)) {
		w.done = true
		w.do()
	}
	return w.buf.Write(p)
}

// runAt calls run in this process with ctx, as main does, and calls do at
// the first log entry containing when: a test acts at a known moment of a
// run (do may cancel ctx, as a signal would), with no sleep. It fails the
// test when the entry never came or the run outlasted 5 minutes.
func runAt(t *testing.T, ctx context.Context, when string, do func(), args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out bytes.Buffer
	errw := &logTrigger{when: when, do: do}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, errw) }()
	select {
	case code = <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("run %q still going after 5 minutes", args)
	}
	if !errw.done {
		t.Fatalf("run %q never logged %q:\n%s", args, when, errw.buf.String())
	}
	return code, out.String(), errw.buf.String()
}

// oneLine says stderr is a single "train: ..." error line, nothing else.
func oneLine(stderr string) bool {
	return strings.HasPrefix(stderr, "train: ") && strings.Count(stderr, "\n") == 1 && strings.HasSuffix(stderr, "\n")
}

// errorLine is the "train: ..." line of a failed run's stderr.
func errorLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "train: ") {
			return l
		}
	}
	return ""
}

// notAFolder is a plain file given as -data-dir: a run that got as far as
// the data would fail on it with exit 1, so exit 2 proves a check came
// first.
func notAFolder(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSameOutputTwiceExits2: two outputs naming one file, however they
// spell it, -metrics-out or -plot naming the -load model, and an output
// inside -checkpoint-dir are usage errors before anything is read or
// written.
func TestSameOutputTwiceExits2(t *testing.T) {
	dir := t.TempDir()
	x := filepath.Join(dir, "x")
	existing := filepath.Join(dir, "existing")
	os.WriteFile(existing, []byte("keep"), 0o644)
	os.Symlink("existing", filepath.Join(dir, "soft"))
	os.Link(existing, filepath.Join(dir, "hard"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink("sub", filepath.Join(dir, "sublink"))
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, x)
	if err != nil {
		t.Fatal(err)
	}
	noData := notAFolder(t)
	const same, isLoad, inCk = "are the same file", "is the -load model", "is inside -checkpoint-dir"
	ck := filepath.Join(dir, "sub")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"save and metrics", []string{"-save", x, "-metrics-out", x}, same},
		{"metrics and plot", []string{"-metrics-out", x, "-plot", x}, same},
		{"all three", []string{"-save", x, "-metrics-out", x, "-plot", x}, same},
		{"relative and absolute", []string{"-save", x, "-plot", rel}, same},
		{"not cleaned", []string{"-save", filepath.Join(dir, "sub") + "/../x", "-plot", x}, same},
		{"symlink", []string{"-save", filepath.Join(dir, "soft"), "-metrics-out", existing}, same},
		{"hard link", []string{"-plot", filepath.Join(dir, "hard"), "-metrics-out", existing}, same},
		{"metrics over load", []string{"-load", existing, "-epochs", "0", "-metrics-out", existing}, isLoad},
		{"plot over load by symlink", []string{"-load", existing, "-plot", filepath.Join(dir, "soft")}, isLoad},
		{"metrics over load by hard link", []string{"-load", filepath.Join(dir, "hard"), "-metrics-out", existing}, isLoad},
		{"save in checkpoint dir", []string{"-checkpoint-dir", ck, "-save", filepath.Join(ck, "m")}, inCk},
		{"plot below checkpoint dir", []string{"-checkpoint-dir", dir, "-plot", filepath.Join(ck, "p.png")}, inCk},
		{"metrics in checkpoint dir by symlink", []string{"-checkpoint-dir", ck, "-metrics-out", filepath.Join(dir, "sublink", "m.json")}, inCk},
		{"checkpoint dir not cleaned", []string{"-checkpoint-dir", ck + "/", "-metrics-out", filepath.Join(dir, "sublink", "m.json")}, inCk},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runGuarded(t, append([]string{"-data-dir", noData}, c.args...)...)
			if code != exitUsage || stdout != "" {
				t.Fatalf("exit %d, want %d; stdout %q, stderr:\n%s", code, exitUsage, stdout, stderr)
			}
			if l := errorLine(stderr); !strings.Contains(l, c.want) || !oneLine(stderr) {
				t.Errorf("stderr should be one line saying %q:\n%s", c.want, stderr)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Errorf("a refused run changed %s", existing)
	}
	assertDirHolds(t, dir, "existing", "hard", "soft", "sub", "sublink")
}

// TestSaveOverLoadAccepted: -save may name the -load model (training on
// from it and keeping the result), and an output beside -checkpoint-dir,
// in a folder that only starts with its name, is not inside it.
func TestSaveOverLoadAccepted(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "m.safetensors")
	os.WriteFile(m, []byte("keep"), 0o644)
	cases := []struct {
		name string
		o    options
	}{
		{"save over load", options{loadPath: m, savePath: m}},
		{"beside checkpoint dir", options{checkpointDir: filepath.Join(dir, "ck"), plotOut: filepath.Join(dir, "ck2.png")}},
		{"checkpoint dir's parent", options{checkpointDir: filepath.Join(dir, "ck"), metricsOut: filepath.Join(dir, "m.json")}},
	}
	for _, c := range cases {
		if err := checkOutputs(c.o); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestOutputTargetsExit2: outputs that are not (links to) regular files,
// or a symlink whose target is missing, are usage errors before anything
// runs, in fileio's words; a symlink to a regular file is accepted.
func TestOutputTargetsExit2(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("nowhere", dangling)
	full := filepath.Join(dir, "full")
	os.Symlink("/dev/full", full)
	noData := notAFolder(t)
	cases := []struct{ flag, path, want string }{
		{"-save", "/dev/null", "it is a device, not a regular file"},
		{"-metrics-out", fifo, "it is a named pipe (FIFO), not a regular file"},
		{"-plot", dangling, "it is a dangling symlink"},
		{"-save", full, "it links to /dev/full, which is a device, not a regular file"},
	}
	for _, c := range cases {
		code, _, stderr := runGuarded(t, "-data-dir", noData, c.flag, c.path)
		if code != exitUsage || !strings.Contains(errorLine(stderr), c.flag+": cannot write "+c.path+": "+c.want) {
			t.Errorf("%s %s: exit %d, stderr:\n%s\nwant exit %d saying %q", c.flag, c.path, code, stderr, exitUsage, c.want)
		}
	}
}

// TestFIFOInputsExit1: a FIFO given to -load or -predict, found among the
// checkpoints of -resume or in place of a data file fails at once with one
// line naming it, exit 1.
func TestFIFOInputsExit1(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.safetensors")
	if err := os.WriteFile(good, goodModelFile(t), 0o644); err != nil {
		t.Fatal(err)
	}
	ckDir := filepath.Join(dir, "run[1]")
	os.Mkdir(ckDir, 0o755)
	ckFIFO := model.CheckpointPath(ckDir, model.TrainState{Epoch: 1})
	if err := syscall.Mkfifo(ckFIFO, 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	os.Mkdir(dataDir, 0o755)
	dataFIFO := filepath.Join(dataDir, data.TrainImagesFile)
	if err := syscall.Mkfifo(dataFIFO, 0o644); err != nil {
		t.Fatal(err)
	}
	noData := filepath.Join(dir, "no-data")
	cases := []struct {
		name string
		args []string
		path string
	}{
		{"-load", []string{"-data-dir", noData, "-load", fifo, "-epochs", "0"}, fifo},
		{"-predict", []string{"-load", good, "-predict", fifo}, fifo},
		{"-resume", []string{"-data-dir", noData, "-checkpoint-dir", ckDir, "-resume"}, ckFIFO},
		{"data file", []string{"-data-dir", dataDir}, dataFIFO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runGuarded(t, c.args...)
			if code != exitRuntime || stdout != "" {
				t.Fatalf("exit %d, want %d; stdout %q; stderr:\n%s", code, exitRuntime, stdout, stderr)
			}
			want := c.path + ": it is a named pipe (FIFO), not a regular file"
			if l := lastLine(stderr); !strings.HasPrefix(l, "train: ") || !strings.Contains(l, want) {
				t.Errorf("last stderr line %q should say %q", l, want)
			}
		})
	}
	if _, err := os.Stat(noData); !os.IsNotExist(err) {
		t.Errorf("a refused run created the data folder")
	}
}

// TestCheckpointDirLockedExits1: while a run holds a checkpoint folder,
// another run on it is refused at once, exit 1, whatever the folder's
// name; once released, the folder can be used again. (The lock is held
// here by this test process: flock locks belong to open file descriptions,
// so run's lock conflicts with it as another process's would.)
func TestCheckpointDirLockedExits1(t *testing.T) {
	noData := notAFolder(t)
	for _, name := range []string{"exp-*", "run[1]", "run["} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			os.Mkdir(dir, 0o755)
			lock, err := model.LockCheckpointDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runGuarded(t, "-data-dir", noData, "-checkpoint-dir", dir)
			if l := lastLine(stderr); code != exitRuntime || !strings.Contains(l, dir) || !strings.Contains(l, "another run") {
				t.Errorf("exit %d, last line %q; want %d naming %s and saying another run uses it", code, l, exitRuntime, dir)
			}
			lock.Unlock()
			// Released: the run gets past the lock, to the data folder.
			code, _, stderr = runGuarded(t, "-data-dir", noData, "-checkpoint-dir", dir)
			if l := lastLine(stderr); code != exitRuntime || strings.Contains(l, "another run") || !strings.Contains(l, noData) {
				t.Errorf("after unlock: exit %d, last line %q; want the data folder's error", code, l)
			}
		})
	}
}

// TestOutputsGoThroughFileio makes each step of the atomic write fail for
// -metrics-out and -plot: the previous file stays (after the rename, when
// only the folder sync fails, the new one is in place), no temporary file
// is left, and the error is one line naming the path.
func TestOutputsGoThroughFileio(t *testing.T) {
	steps := []fileio.Step{fileio.StepCreateTemp, fileio.StepWrite, fileio.StepSync, fileio.StepClose, fileio.StepRename, fileio.StepSyncDir}
	for _, flag := range []string{"metrics-out", "plot"} {
		for _, step := range steps {
			t.Run(flag+"/"+step.String(), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "out")
				os.WriteFile(path, []byte("previous"), 0o644)
				var o options
				if flag == "plot" {
					o.plotOut = path
				} else {
					o.metricsOut = path
				}
				r := testReport(2, false)
				r.files = fileio.Writer{Fault: &fileio.Fault{Step: step, After: 10}}
				err := r.writeOutputs(o)
				if err == nil || !strings.Contains(err.Error(), "cannot write "+path+": ") || !strings.Contains(err.Error(), step.String()) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %v, want one line naming %s and the failed step", err, path)
				}
				b, _ := os.ReadFile(path)
				if renamed := step == fileio.StepSyncDir; renamed == (string(b) == "previous") || len(b) == 0 {
					t.Errorf("after a failed %s the file holds %d bytes (%q...)", step, len(b), b[:min(len(b), 8)])
				}
				assertDirHolds(t, dir, "out")
			})
		}
	}
}
