package gpu

// No build tag: the test reads the committed PTX as data, so the CPU build's
// `go test ./...` checks it too wherever the toolkit's ptxas is installed.

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ptxResources is what ptxas -v reports of one function of a PTX module.
type ptxResources struct {
	name                    string
	registers, sharedBytes  int
	stackBytes              int
	spillStores, spillLoads int
}

var (
	ptxasEntry      = regexp.MustCompile(`Compiling entry function '([^']+)'`)
	ptxasProperties = regexp.MustCompile(`Function properties for (\S+)`)
	ptxasFrame      = regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
	// Newer ptxas releases (CUDA 13's among them) put the barriers between
	// the registers and the shared memory:
	// "Used 64 registers, used 1 barriers, 39328 bytes smem".
	ptxasUsed = regexp.MustCompile(`Used (\d+) registers(?:, used \d+ barriers)?(?:, (\d+) bytes smem)?`)
)

// parsePtxasInfo reads ptxas -v's report line by line: a function's stack
// and spills from the line after its "Function properties" line (device
// functions such as pow's have them too), an entry's registers and static
// shared memory from the "Used" line after its "Compiling entry function"
// line.
func parsePtxasInfo(out string) []ptxResources {
	var funcs []ptxResources
	index := map[string]int{}
	find := func(name string) int {
		i, ok := index[name]
		if !ok {
			i = len(funcs)
			index[name] = i
			funcs = append(funcs, ptxResources{name: name})
		}
		return i
	}
	atoi := func(s string) int {
		n, _ := strconv.Atoi(s) // the regexps match digits only; "" is 0
		return n
	}
	entry, props := -1, -1
	for _, line := range strings.Split(out, "\n") {
		if m := ptxasEntry.FindStringSubmatch(line); m != nil {
			entry = find(m[1])
		} else if m := ptxasProperties.FindStringSubmatch(line); m != nil {
			props = find(m[1])
		} else if m := ptxasFrame.FindStringSubmatch(line); m != nil && props >= 0 {
			f := &funcs[props]
			f.stackBytes, f.spillStores, f.spillLoads = atoi(m[1]), atoi(m[2]), atoi(m[3])
			props = -1
		} else if m := ptxasUsed.FindStringSubmatch(line); m != nil && entry >= 0 {
			f := &funcs[entry]
			f.registers, f.sharedBytes = atoi(m[1]), atoi(m[2])
			entry = -1
		}
	}
	return funcs
}

// assemblePTX runs ptxas on a PTX file for arch (sm_XX), as the driver's
// JIT does when it loads the module on such a GPU, and returns what it
// reports of each function, or its error output if it refuses the file.
func assemblePTX(ptxas, arch, file, workDir string) ([]ptxResources, error) {
	cubin := filepath.Join(workDir, strings.TrimSuffix(filepath.Base(file), ".ptx")+"."+arch+".cubin")
	out, err := exec.Command(ptxas, "-arch="+arch, "-v", "-o", cubin, file).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ptxas -arch=%s %s: %v\n%s", arch, filepath.Base(file), err, out)
	}
	return parsePtxasInfo(string(out)), nil
}

// TestPTXAssembles assembles every committed PTX file for the oldest GPU
// the cuda build accepts (ptx_cuda.go's ptxComputeCapability) and for the
// H100/H200 (sm_90). nvcc -ptx stops before the assembler, so a kernel past
// a hardware limit (static shared memory over 48 KiB, say: train_steps uses
// about 39) would otherwise first fail on a GPU, when the driver loads the
// module. A register spill fails it too: it would put a kernel's working
// values in local memory, in the step every engine runs 9,375 times.
func TestPTXAssembles(t *testing.T) {
	ptxas := needTool(t, "ptxas")
	gpuDir := filepath.Join(repoRoot(t), "gpu")
	oldest := parseGenerated(t, filepath.Join(gpuDir, "ptx_cuda.go")).consts["ptxComputeCapability"]
	if oldest == "" {
		t.Fatal("ptx_cuda.go lacks ptxComputeCapability")
	}
	files := append(ptxFilesIn(t, gpuDir, "kernels"), ptxFilesIn(t, gpuDir, gorgoniaPTXDir)...)
	if len(files) < 2 {
		t.Fatalf("found only %v under gpu/kernels", files)
	}
	work := t.TempDir()
	for _, arch := range []string{"sm_" + oldest, "sm_90"} {
		for _, rel := range files {
			t.Run(arch+"/"+path.Base(rel), func(t *testing.T) {
				funcs, err := assemblePTX(ptxas, arch, filepath.Join(gpuDir, filepath.FromSlash(rel)), work)
				if err != nil {
					t.Fatal(err)
				}
				if len(funcs) == 0 {
					t.Fatal("ptxas -v reported no functions: has its output changed?")
				}
				for _, f := range funcs {
					if f.spillStores > 0 || f.spillLoads > 0 {
						t.Errorf("%s spills registers on %s: %d bytes stored, %d loaded", f.name, arch, f.spillStores, f.spillLoads)
					}
					if f.sharedBytes > 0 {
						t.Logf("%s: %d registers, %d bytes of static shared memory, %d bytes of stack", f.name, f.registers, f.sharedBytes, f.stackBytes)
					}
				}
			})
		}
	}

	// The check can fail: a kernel with 64 KiB of static shared memory,
	// which nvcc -ptx would pass, is refused as the driver would refuse it.
	t.Run("refuses too much shared memory", func(t *testing.T) {
		file := filepath.Join(work, "big.ptx")
		if err := os.WriteFile(file, []byte(tooMuchSharedPTX), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := assemblePTX(ptxas, "sm_90", file, work)
		if err == nil || !strings.Contains(err.Error(), "too much shared data") {
			t.Fatalf("want ptxas to refuse 64 KiB of static shared memory, got %v", err)
		}
	})
}

// tooMuchSharedPTX is a kernel that reads and writes a 64 KiB static
// shared array, past the 48 KiB a block may declare statically.
const tooMuchSharedPTX = `.version 7.8
.target sm_75
.address_size 64
.visible .entry big(.param .u64 p)
{
	.reg .b32 %r<3>;
	.reg .b64 %rd<3>;
	.shared .align 4 .b8 buf[65536];
	mov.u32 %r1, buf;
	ld.param.u64 %rd1, [p];
	st.shared.u32 [%r1+65532], %r1;
	ld.shared.u32 %r2, [%r1+4];
	cvta.to.global.u64 %rd2, %rd1;
	st.global.u32 [%rd2], %r2;
	ret;
}
`

func TestParsePtxasInfo(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []ptxResources
	}{
		{
			name: "entry with shared memory, stack and a device function",
			out: `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'train_steps' for 'sm_90'
ptxas info    : Function properties for train_steps
    48 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 64 registers, 39328 bytes smem
ptxas info    : Function properties for __internal_accurate_pow
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
`,
			want: []ptxResources{
				{name: "train_steps", registers: 64, sharedBytes: 39328, stackBytes: 48},
				{name: "__internal_accurate_pow"},
			},
		},
		{
			name: "spills, no shared memory, cmem after the registers",
			out: `ptxas info    : Compiling entry function 'adam' for 'sm_75'
ptxas info    : Function properties for adam
    8 bytes stack frame, 12 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 16 registers, 376 bytes cmem[0]
ptxas info    : Compiling entry function 'relu' for 'sm_75'
ptxas info    : Function properties for relu
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, 1024 bytes smem, 360 bytes cmem[0]
`,
			want: []ptxResources{
				{name: "adam", registers: 16, stackBytes: 8, spillStores: 12, spillLoads: 4},
				{name: "relu", registers: 10, sharedBytes: 1024},
			},
		},
		{
			name: "barriers before the shared memory (CUDA 13)",
			out: `ptxas info    : Compiling entry function 'train_steps' for 'sm_90'
ptxas info    : Function properties for train_steps
    48 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 64 registers, used 1 barriers, 39328 bytes smem, 400 bytes cmem[0]
ptxas info    : Compiling entry function 'adam' for 'sm_90'
ptxas info    : Function properties for adam
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 16 registers, used 0 barriers, 376 bytes cmem[0]
`,
			want: []ptxResources{
				{name: "train_steps", registers: 64, sharedBytes: 39328, stackBytes: 48},
				{name: "adam", registers: 16},
			},
		},
		{name: "nothing reported", out: "ptxas info    : 0 bytes gmem\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePtxasInfo(tt.out)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("parsePtxasInfo:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
