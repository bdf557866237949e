//go:build !cuda

package gpu

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestGPUHostRunTrainsEveryEngine checks that scripts/gpu-host-run.sh
// trains, seeds and sweeps every engine of the cuda build: its list must be
// EngineNames, in any order.
func TestGPUHostRunTrainsEveryEngine(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "gpu-host-run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^engines="([^"]*)"$`).FindSubmatch(src)
	if m == nil {
		t.Fatal(`gpu-host-run.sh has no engines="..." line`)
	}
	got := strings.Fields(string(m[1]))
	want := EngineNames()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("gpu-host-run.sh runs the engines %v, the build has %v", got, want)
	}
}
