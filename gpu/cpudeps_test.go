package gpu

import (
	"bytes"
	"path/filepath"
	"testing"
)

// The CPU build's adapted Gorgonia (scripts/cpu-deps.sh) is tested here,
// beside the cuda build's (cudadeps_test.go), whose helpers it shares: both
// scripts share their copying and rewriting (scripts/deps-tools.sh).

// cpuRunAllLines is what the copy's vm_tape.go adds at the top of RunAll.
const cpuRunAllLines = "\tif m.ExternMetadata.WorkAvailable() == nil {\n\t\treturn m.runAllHere() // mnist cpu-deps.sh: no device to feed\n\t}\n"

// TestCPUDepsDeterministic runs scripts/cpu-deps.sh into two fresh folders
// and again into the first: the trees are identical, go.cpu.mod is go.mod
// plus one replace, and the copy is upstream's but for RunAll's first lines
// and the runAllHere it calls, appended to vm_tape.go.
func TestCPUDepsDeterministic(t *testing.T) {
	first := runDeterministic(t, "scripts/cpu-deps.sh")
	root := repoRoot(t)
	want := append(mustReadFile(t, filepath.Join(root, "go.mod")),
		"\n// Added by scripts/cpu-deps.sh: the CPU build uses an adapted copy of gorgonia.\nreplace gorgonia.org/gorgonia => ./.cpu-deps/gorgonia\n"...)
	if got := mustReadFile(t, filepath.Join(first, "go.cpu.mod")); !bytes.Equal(got, want) {
		t.Errorf("go.cpu.mod is not go.mod plus the replace of gorgonia:\n%s", got)
	}
	if !bytes.Equal(mustReadFile(t, filepath.Join(first, "go.cpu.sum")), mustReadFile(t, filepath.Join(root, "go.sum"))) {
		t.Error("go.cpu.sum is not go.sum")
	}

	checkGorgoniaCopy(t, filepath.Join(first, ".cpu-deps", "gorgonia"), map[string]func(upstream, got []byte){
		"vm_tape.go": func(upstream, got []byte) { checkRunAllHere(t, upstream, got, cpuRunAllLines) },
	}, nil)
}

// checkRunAllHere: adapted is upstream with lines at the top of RunAll and
// a runAllHere function appended (scripts/deps-tools.sh), nothing else.
func checkRunAllHere(t *testing.T, upstream, adapted []byte, lines string) {
	t.Helper()
	const head = "func (m *tapeMachine) RunAll() (err error) {\n"
	if bytes.Count(upstream, []byte(head)) != 1 {
		t.Fatal("upstream vm_tape.go has no single RunAll; is this the gorgonia version cpu-deps.sh was written for?")
	}
	withLines := bytes.Replace(upstream, []byte(head), []byte(head+lines), 1)
	if !bytes.HasPrefix(adapted, withLines) {
		t.Fatalf("the adapted vm_tape.go is not upstream's with %q at the top of RunAll", lines)
	}
	tail := adapted[len(withLines):]
	if !bytes.HasPrefix(tail, []byte("\n// runAllHere is RunAll on the calling goroutine")) ||
		!bytes.Contains(tail, []byte("func (m *tapeMachine) runAllHere() error {")) {
		t.Errorf("the adapted vm_tape.go should end with runAllHere; it ends with %q", tail)
	}
}
