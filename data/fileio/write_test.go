//go:build unix

package fileio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// content is what the tests write: several writes, so that a disk that
// fills up can do so between two of them or inside one.
func content(w io.Writer) error {
	for _, part := range []string{"new ", "content ", "in three writes"} {
		if _, err := io.WriteString(w, part); err != nil {
			return err
		}
	}
	return nil
}

const newContent = "new content in three writes"

// listDir is the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkOneLine fails unless err is a one-line error naming path.
func checkOneLine(t *testing.T, err error, path string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, path) {
		t.Errorf("error %q is not one line naming %s", msg, path)
	}
}

// TestWriteFileFaults makes each step of a write fail in turn, with and
// without a previous file: the previous file must be intact (or still
// absent), no temporary file may be left, and the error must be one line
// naming the path and wrapping the cause. Syncing the folder comes after
// the rename: there the new file must be whole.
func TestWriteFileFaults(t *testing.T) {
	boom := errors.New("injected")
	faults := []struct {
		name  string
		fault Fault
		want  error // what the error must wrap
	}{
		{"create temp", Fault{Step: StepCreateTemp, Err: boom}, boom},
		{"write", Fault{Step: StepWrite, Err: boom}, boom},
		{"disk full at once", Fault{Step: StepWrite}, syscall.ENOSPC},
		{"disk full after 6 bytes", Fault{Step: StepWrite, After: 6}, syscall.ENOSPC},
		{"disk full 1 byte short", Fault{Step: StepWrite, After: int64(len(newContent) - 1)}, syscall.ENOSPC},
		{"fsync", Fault{Step: StepSync}, syscall.EIO},
		{"close", Fault{Step: StepClose, Err: boom}, boom},
		{"rename", Fault{Step: StepRename, Err: boom}, boom},
		{"fsync folder", Fault{Step: StepSyncDir}, syscall.EIO},
	}
	for _, f := range faults {
		for _, previous := range []string{"", "previous content"} {
			t.Run(f.name+"/previous="+previous, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "out.bin")
				if previous != "" {
					if err := os.WriteFile(path, []byte(previous), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				err := Writer{Fault: &f.fault}.WriteFile(path, content)
				checkOneLine(t, err, path)
				if !errors.Is(err, f.want) {
					t.Errorf("error %q does not wrap %v", err, f.want)
				}
				if !strings.Contains(err.Error(), f.fault.Step.String()) {
					t.Errorf("error %q does not say the step %q failed", err, f.fault.Step)
				}
				want := previous
				if f.fault.Step == StepSyncDir {
					want = newContent // renamed before the folder sync failed
				}
				got, readErr := os.ReadFile(path)
				switch {
				case want == "" && !errors.Is(readErr, os.ErrNotExist):
					t.Errorf("a failed write left %q at the target (%v)", got, readErr)
				case want != "" && string(got) != want:
					t.Errorf("target holds %q (%v), want %q", got, readErr, want)
				}
				wantNames := []string{}
				if want != "" {
					wantNames = []string{"out.bin"}
				}
				if names := listDir(t, dir); !slices.Equal(names, wantNames) && !(len(names) == 0 && len(wantNames) == 0) {
					t.Errorf("folder holds %q, want %q (no temporary file)", names, wantNames)
				}
			})
		}
	}
}

// TestFullDiskWritesUpToTheLimit: the injected full disk takes exactly
// After bytes, as a real one would, so the test above exercises a partly
// written temporary file.
func TestFullDiskWritesUpToTheLimit(t *testing.T) {
	for _, after := range []int64{0, 1, 6, 27, 28} {
		var buf bytes.Buffer
		d := &fullDisk{w: &buf, left: after, err: syscall.ENOSPC}
		err := content(d)
		wantErr := after < int64(len(newContent))
		if (err != nil) != wantErr || int64(buf.Len()) != min(after, int64(len(newContent))) {
			t.Errorf("after %d: wrote %d bytes, error %v", after, buf.Len(), err)
		}
	}
}

// TestWriteFile: a new file, a replaced one, one written through a
// symlink; mode 0644 less the umask; nothing else left in the folder.
func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	for range 2 { // create, then replace
		if err := WriteFile(path, content); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != newContent {
			t.Fatalf("file holds %q", got)
		}
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", info.Mode().Perm(), err)
	}

	// Through a symlink: the target is replaced, the link stays a link.
	real := filepath.Join(dir, "real.json")
	os.WriteFile(real, []byte("old"), 0o600)
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, content); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(real); string(got) != newContent {
		t.Errorf("symlink target holds %q", got)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", info.Mode(), err)
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{"link.json", "out.json", "real.json"}) {
		t.Errorf("folder holds %q", names)
	}

	// The write function's error is returned, wrapped, and nothing is left.
	boom := errors.New("encoder failed")
	err := WriteFile(path, func(w io.Writer) error { w.Write([]byte("part")); return boom })
	if !errors.Is(err, boom) {
		t.Errorf("error %v does not wrap the writer's", err)
	}
	checkOneLine(t, err, path)
	if got, _ := os.ReadFile(path); string(got) != newContent {
		t.Errorf("a failed write changed the file to %q", got)
	}
}

// badTargets makes, in dir, each kind of path an output must refuse, and
// returns them with a word the error must contain.
func badTargets(t *testing.T, dir string) []struct{ name, path, want string } {
	t.Helper()
	folder := filepath.Join(dir, "folder")
	os.Mkdir(folder, 0o755)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	symlink := func(name, to string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return []struct{ name, path, want string }{
		{"folder", folder, "it is a folder, not a regular file"},
		{"/dev/null", "/dev/null", "it is a device, not a regular file"},
		{"/dev/full", "/dev/full", "it is a device, not a regular file"},
		{"FIFO", fifo, "it is a named pipe (FIFO), not a regular file"},
		{"dangling symlink", symlink("dangling", "nowhere"), "dangling symlink (to nowhere)"},
		{"symlink to /dev/null", symlink("null", "/dev/null"), "links to /dev/null, which is a device, not a regular file"},
		{"symlink to a folder", symlink("tofolder", "folder"), "links to folder, which is a folder"},
		{"missing folder", filepath.Join(dir, "missing", "out"), "folder " + filepath.Join(dir, "missing") + " does not exist"},
		{"under a file", filepath.Join(file, "out"), file + " is not a folder"},
		{"temporary name", filepath.Join(dir, ".out.tmp-abc123"), "temporary file"},
	}
}

// TestBadTargets: CheckTarget and WriteFile refuse the same paths with the
// same one-line error, and change nothing.
func TestBadTargets(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range badTargets(t, dir) {
		t.Run(tt.name, func(t *testing.T) {
			before := listDir(t, dir)
			checkErr := CheckTarget(tt.path)
			if checkErr == nil {
				// Never go on to WriteFile: run as root, a broken check
				// would rename a file over /dev/null.
				t.Fatalf("CheckTarget(%s) accepted it", tt.path)
			}
			checkOneLine(t, checkErr, tt.path)
			if !strings.Contains(checkErr.Error(), tt.want) {
				t.Errorf("CheckTarget: %q does not say %q", checkErr, tt.want)
			}
			writeErr := WriteFile(tt.path, content)
			if writeErr == nil || writeErr.Error() != checkErr.Error() {
				t.Errorf("WriteFile: %v, want the same error as CheckTarget's %q", writeErr, checkErr)
			}
			if after := listDir(t, dir); !slices.Equal(before, after) {
				t.Errorf("folder changed from %q to %q", before, after)
			}
		})
	}
}

// TestGoodTargets: absent, regular and symlinked-to-regular outputs pass
// CheckTarget, which leaves no file behind.
func TestGoodTargets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644)
	os.Symlink("file", filepath.Join(dir, "link"))
	for _, name := range []string{"new", "file", "link", "exp-*", "run[1]", "run["} {
		if err := CheckTarget(filepath.Join(dir, name)); err != nil {
			t.Errorf("CheckTarget(%s): %v", name, err)
		}
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{"file", "link"}) {
		t.Errorf("folder holds %q", names)
	}
}

// TestCheckTargetUnwritableFolder needs a user whom permissions stop.
func TestCheckTargetUnwritableFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes in any folder")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "out")
	err := CheckTarget(path)
	checkOneLine(t, err, path)
	if !errors.Is(err, os.ErrPermission) {
		t.Errorf("error %v is not a permission error", err)
	}
}

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Errorf("SyncDir(%s): %v", dir, err)
	}
	missing := filepath.Join(dir, "missing")
	err := SyncDir(missing)
	checkOneLine(t, err, missing)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap ErrNotExist", err)
	}
}

// TestMkdirAllSynced: the folders that were missing are made and the
// folder holding each is synced, none when dir exists; a failure to make
// one or to sync is one line naming dir.
func TestMkdirAllSynced(t *testing.T) {
	tests := []struct {
		name     string
		existing string // made first, under the test's folder
		dir      string // then this, under the test's folder
		syncErr  error  // what every sync returns
		synced   []string
		wantErr  error
	}{
		{name: "three new levels", dir: "a/b/c", synced: []string{"a/b", "a", "."}},
		{name: "one new level", existing: "a", dir: "a/b", synced: []string{"a"}},
		{name: "exists", existing: "a/b", dir: "a/b"},
		{name: "under a file", existing: "file", dir: "file/x", wantErr: syscall.ENOTDIR},
		{name: "sync fails", dir: "a/b", syncErr: syscall.EIO, synced: []string{"a"}, wantErr: syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.existing == "file" {
				if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if tt.existing != "" {
				if err := os.MkdirAll(filepath.Join(root, tt.existing), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var synced []string
			dir := filepath.Join(root, tt.dir)
			err := mkdirAllSynced(dir, 0o755, func(d string) error {
				rel, _ := filepath.Rel(root, d)
				synced = append(synced, rel)
				return tt.syncErr
			})
			if tt.wantErr != nil {
				checkOneLine(t, err, dir)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v is not %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(synced, tt.synced) {
				t.Errorf("synced %q, want %q", synced, tt.synced)
			}
			if info, err := os.Stat(dir); tt.existing != "file" && (err != nil || !info.IsDir()) {
				t.Errorf("%s was not made: %v", dir, err)
			}
		})
	}
	// The real sync, as programs call it.
	dir := filepath.Join(t.TempDir(), "x", "y")
	if err := MkdirAllSynced(dir, 0o755); err != nil {
		t.Errorf("MkdirAllSynced(%s): %v", dir, err)
	}
}

func TestIsTemp(t *testing.T) {
	tests := []struct {
		name   string
		want   bool
		target string
	}{
		{".model.safetensors.tmp-3k2j1", true, "model.safetensors"},
		{"/some/dir/.m.json.tmp-0", true, "m.json"},
		{"/some/dir/.a.tmp-b.tmp-c", true, "a.tmp-b"},
		{"model.safetensors", false, ""},
		{".model.safetensors", false, ""},
		{"model.safetensors.tmp-3k2j1", false, ""}, // no leading dot
		{".model.tmp-", false, ""},                 // no suffix
		{".model.tmp-ABC", false, ""},              // not our alphabet
		{".tmp-abc", false, ""},                    // no target name
	}
	for _, tt := range tests {
		if got := IsTemp(tt.name); got != tt.want {
			t.Errorf("IsTemp(%q) = %v, want %v", tt.name, got, tt.want)
		}
		if target, ok := TempTarget(tt.name); target != tt.target || ok != tt.want {
			t.Errorf("TempTarget(%q) = %q, %v; want %q, %v", tt.name, target, ok, tt.target, tt.want)
		}
	}
	// And the names createTemp makes are recognised.
	dir := t.TempDir()
	f, err := createTemp(filepath.Join(dir, "x.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !IsTemp(f.Name()) || !strings.HasPrefix(filepath.Base(f.Name()), ".x.json.tmp-") {
		t.Errorf("temporary file %s is not recognised", f.Name())
	}
}

func TestSamePath(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	os.WriteFile(a, nil, 0o644)
	os.Link(a, filepath.Join(dir, "hard"))
	os.Symlink("a", filepath.Join(dir, "soft"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink("sub", filepath.Join(dir, "sublink"))
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, a)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		a, b string
		want bool
	}{
		{a, a, true},
		{a, rel, true},
		{a, dir + "/./sub/../a", true},
		{a, filepath.Join(dir, "hard"), true},
		{a, filepath.Join(dir, "soft"), true},
		{filepath.Join(dir, "sub", "new"), filepath.Join(dir, "sublink", "new"), true}, // neither exists yet
		{filepath.Join(dir, "new"), filepath.Join(dir, "new"), true},
		{a, filepath.Join(dir, "b"), false},
		{filepath.Join(dir, "new1"), filepath.Join(dir, "new2"), false},
	}
	for _, tt := range tests {
		if got := SamePath(tt.a, tt.b); got != tt.want {
			t.Errorf("SamePath(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
