#!/usr/bin/env bash
# cuda-deps.sh - generate the adapted gorgonia.org/cu and gorgonia.org/gorgonia
# that the cuda build uses.
#
# Usage: scripts/cuda-deps.sh [--modfile-only] [OUTDIR]
#   OUTDIR defaults to the repository root. It receives:
#     .cuda-deps/cu        adapted copy of gorgonia.org/cu (git-ignored)
#     .cuda-deps/gorgonia  adapted copy of gorgonia.org/gorgonia (git-ignored)
#     go.cuda.mod          go.mod + a replace of each of the two modules by
#                          its copy in .cuda-deps
#     go.cuda.sum          copy of go.sum
#   --modfile-only writes just go.cuda.mod and go.cuda.sum. That is all a
#   vendored, offline build needs (the adapted copies then live in vendor/).
#
# Why this exists. `go build -tags cuda` of gorgonia.org/gorgonia v0.9.18 with
# gorgonia.org/cu v0.9.6 as published cannot work here:
#   1. gorgonia's CUDA engine imports gorgonia.org/cu/dnn, which needs cuDNN
#      (cudnn.h, cuDNN 7/8 API). We have no cuDNN and use none of it.
#   2. cu fails to compile against CUDA 13 headers (cuCtxCreate, cuMemAdvise,
#      cuMemPrefetchAsync, cuGraphAddDependencies, cuGraphGetEdges changed).
#   3. cu's package init calls cuInit and os.Exit(1)s on failure, so a cuda
#      binary dies before main on a machine without a usable GPU.
#   4. gorgonia's cuda.go has an init that logs "Using CUDA build" to stderr,
#      before main, at every start of the binary. That breaks the trainer's
#      promise of one error line on stderr for bad input and puts a non-JSON
#      line into -log-format json output.
#   5. gorgonia's cuda.Engine.Run creates the engine's cuBLAS handle on a
#      goroutine of its own, locked to a thread on which it never makes the
#      engine's context current: cublasCreate then meets whatever context
#      that thread had last, and after an earlier machine was closed that is
#      a destroyed one (cuBLAS NotInitialized, seen on an H100).
#   6. gorgonia's RunAll hands every run of a program between two threads,
#      which costs a training step about as much host time as all its ops.
#   7. gorgonia's cuda.Engine.Close destroys its context before stopping the
#      goroutine that polls it (a data race).
#
# Chosen mechanism: a second mod file plus generated module folders.
# We copy each module from the module cache (verified against go.sum by `go
# mod download`) into the git-ignored .cuda-deps/, apply our own changes
# (for cu from scripts/cudacompat/: a cuDNN-free stand-in for cu/dnn, a
# compat header with CUDA 11/12/13 shims, an explicit Init instead of the
# exiting init; for gorgonia: cuda.go without its init, one line in
# cuda/external.go, RunAll on the calling goroutine), and build with
# `-modfile go.cuda.mod`, whose only difference from go.mod is the two
# replaces `gorgonia.org/cu => ./.cuda-deps/cu` and
# `gorgonia.org/gorgonia => ./.cuda-deps/gorgonia`.
# Each change first checks that upstream is what it was written for
# (rewrites must match an exact number of times), so a different upstream
# stops this script instead of being adapted halfway.
# Alternatives rejected:
#   - `go build -overlay` is refused for files under GOMODCACHE ("Files
#     beneath GOMODCACHE must not be replaced").
#   - a replace directive in go.mod itself would make the CPU build depend on
#     a generated folder, and committing a patched fork would put third-party
#     source in this repository.
#   - -tags/ldflags cannot remove a package's cgo files or its init function,
#     and redirecting the standard logger from main comes too late: package
#     inits run before main.
# The copies leave out what no build of ours reads (upstream's tests,
# examples, media and code generators; gorgonia's examples/ alone is 85 MB).
# The output depends only on the pinned versions and scripts/cudacompat/, so
# running this twice yields the same tree (tested by gpu/cudadeps_test.go).
set -euo pipefail

# The rewrites below are written for exactly these versions; go.mod must agree.
CU_MODULE=gorgonia.org/cu
CU_VERSION=v0.9.6
GORGONIA_MODULE=gorgonia.org/gorgonia
GORGONIA_VERSION=v0.9.18

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
compat_dir="$repo_root/scripts/cudacompat"

modfile_only=false
if [[ "${1:-}" == "--modfile-only" ]]; then
	modfile_only=true
	shift
fi
out_dir=${1:-$repo_root}
if [[ $# -gt 1 ]]; then
	echo "usage: $0 [--modfile-only] [OUTDIR]" >&2
	exit 2
fi
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

die() {
	echo "cuda-deps: $*" >&2
	exit 1
}

# --- go.cuda.mod / go.cuda.sum ----------------------------------------------

go_mod="$repo_root/go.mod"

# check_go_mod, write_modfile, copy_module, rewrite and append_run_all_here.
# shellcheck source=deps-tools.sh
source "$repo_root/scripts/deps-tools.sh"

check_go_mod "$CU_MODULE" "$CU_VERSION"
check_go_mod "$GORGONIA_MODULE" "$GORGONIA_VERSION"

write_modfile cuda "the cuda build uses adapted copies of cu and gorgonia" \
	"$CU_MODULE => ./.cuda-deps/cu" "$GORGONIA_MODULE => ./.cuda-deps/gorgonia"
if $modfile_only; then
	exit 0
fi

# --- module copies ----------------------------------------------------------

mkdir -p "$out_dir/.cuda-deps"
# Build in a scratch folder next to the targets and swap them in at the end,
# so an interrupted run never leaves a half-adapted copy behind.
work=$(mktemp -d "$out_dir/.cuda-deps/.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- .cuda-deps/cu ----------------------------------------------------------

copy_module "$CU_MODULE" "$CU_VERSION" cu
cu_dir=$work/cu

# Not needed to build the packages gorgonia imports: upstream's test data and
# the code generators under cmd/ (which need cuDNN/cuBLAS headers and extra
# modules of their own).
rm -rf "$cu_dir/cmd" "$cu_dir/testdata"

# Obstacle 1: replace cu/dnn (cgo, cuDNN) with our cuDNN-free stand-in.
rm -rf "$cu_dir/dnn"
mkdir "$cu_dir/dnn"
install -m 0644 "$compat_dir/cudnn.go.in" "$cu_dir/dnn/cudnn.go"

# Obstacle 3: upstream cu.go holds only the exiting init() and Version();
# replace it by our Init (plus Version, CompiledVersion, ErrorString,
# Initialized). The rewrites further down make NumDevices and GetDevice call
# Init, so code written for upstream's eager init (gorgonia) keeps working
# while a caller that wants to set CUDA_VISIBLE_DEVICES first still can.
grep -q 'os.Exit(1)' "$cu_dir/cu.go" && grep -q 'C.cuInit' "$cu_dir/cu.go" ||
	die "upstream cu.go is not the expected one; review the adaptation"
[[ $(grep -c '^func ' "$cu_dir/cu.go") -eq 2 ]] ||
	die "upstream cu.go has functions besides init and Version; review the adaptation"
rm "$cu_dir/cu.go"
install -m 0644 "$compat_dir/cu_init.go.in" "$cu_dir/mnist_init.go"

# Obstacle 2: CUDA 13 signature changes. Route the affected calls through the
# static inline wrappers of mnist_cudacompat.h (which includes cuda.h).
install -m 0644 "$compat_dir/mnist_cudacompat.h" "$cu_dir/mnist_cudacompat.h"

for f in addressing.go ctx.go ctx_debug.go cucontext.go graph.go; do
	rewrite "cu/$f" '// #include <cuda.h>' '// #include "mnist_cudacompat.h"' 1
done
rewrite cu/ctx.go 'C.cuCtxCreate(' 'C.mnist_cuCtxCreate(' 2
rewrite cu/ctx_debug.go 'C.cuCtxCreate(' 'C.mnist_cuCtxCreate(' 2
rewrite cu/cucontext.go 'C.cuCtxCreate(' 'C.mnist_cuCtxCreate(' 1
rewrite cu/addressing.go 'C.cuMemAdvise(' 'C.mnist_cuMemAdvise(' 1
rewrite cu/addressing.go 'C.cuMemPrefetchAsync(' 'C.mnist_cuMemPrefetchAsync(' 1
rewrite cu/graph.go 'C.cuGraphAddDependencies(' 'C.mnist_cuGraphAddDependencies(' 1
rewrite cu/graph.go 'C.cuGraphGetEdges(' 'C.mnist_cuGraphGetEdges(' 1

# Obstacle 3, continued: initialise on first use. Device handles only come
# from GetDevice and every program asks NumDevices or GetDevice first.
init_first=$'\tif err = Init(); err != nil {\n\t\treturn\n\t}\n'
rewrite cu/api.go $'func GetDevice(ordinal int) (device Device, err error) {\n' \
	$'func GetDevice(ordinal int) (device Device, err error) {\n'"$init_first" 1
rewrite cu/api.go $'func NumDevices() (count int, err error) {\n' \
	$'func NumDevices() (count int, err error) {\n'"$init_first" 1

# Nothing may still call the changed entry points directly.
if grep -rnE 'C\.(cuCtxCreate|cuMemAdvise|cuMemPrefetchAsync|cuGraphAddDependencies|cuGraphGetEdges)\(' --include='*.go' "$cu_dir"; then
	die "call sites above still use CUDA entry points whose signature changed in CUDA 13"
fi

cat >"$cu_dir/MNIST-ADAPTED.md" <<EOF
# Generated: adapted copy of $CU_MODULE $CU_VERSION

Written by the mnist project's scripts/cuda-deps.sh from the module cache copy
of $CU_MODULE@$CU_VERSION and scripts/cudacompat/. Do not edit; rerun the script.

- dnn/: cuDNN-free stand-in (scripts/cudacompat/cudnn.go.in) for gorgonia's CUDA engine.
- cu.go replaced by mnist_init.go (scripts/cudacompat/cu_init.go.in): Init instead of an
  init function that exits the process; NumDevices and GetDevice (api.go) call Init first.
- mnist_cudacompat.h: CUDA 11/12/13 shims; calls to cuCtxCreate, cuMemAdvise,
  cuMemPrefetchAsync, cuGraphAddDependencies and cuGraphGetEdges go through it.
- Removed: cmd/, testdata/, *_test.go.
EOF
chmod 0644 "$cu_dir/MNIST-ADAPTED.md"

# --- .cuda-deps/gorgonia ----------------------------------------------------

copy_module "$GORGONIA_MODULE" "$GORGONIA_VERSION" gorgonia
gorgonia_dir=$work/gorgonia

# Not needed to build any package of the module, and most of its size:
# examples/ (85 MB of models and data), media/, docs/, upstream's CI
# (.github/), the code generators under cmd/ (main packages nothing imports)
# and the kernel sources in "cuda modules" (scripts/gen-ptx.sh reads those
# from the module cache; the result is committed in gpu/kernels/gorgonia/).
rm -rf "$gorgonia_dir/examples" "$gorgonia_dir/media" "$gorgonia_dir/docs" \
	"$gorgonia_dir/.github" "$gorgonia_dir/cmd" "$gorgonia_dir/cuda modules"

# Obstacle 4: cuda.go's init does nothing but log the banner, and "log" is
# imported in that file only for it.
rewrite gorgonia/cuda.go $'func init() {\n\tlog.Println("Using CUDA build")\n}\n\n' '' 1
rewrite gorgonia/cuda.go $'\t"log"\n' '' 1
if grep -rn 'Using CUDA build' "$gorgonia_dir"; then
	die "the copy of $GORGONIA_MODULE still has the banner (above)"
fi

# Obstacle 5: make the engine's context current before the cuBLAS handle is
# made on Run's thread.
rewrite gorgonia/cuda/external.go $'\t// finish initialization\n\te.b.Init(cublas.WithContext(&e.c))\n' \
	$'\t// finish initialization\n\tcu.SetCurrentContext(e.c.CUDAContext()) // mnist cuda-deps.sh: the handle is made in this context\n\te.b.Init(cublas.WithContext(&e.c))\n' 1

# Obstacle 7: Engine.Close destroys the context (closing its work channel)
# while the engine's Run goroutine is still polling that channel, and only
# then tells Run to stop: a data race that `go test -race` reports on every
# engine closed (scripts/test-cuda-cpu.sh runs the GPU tests without a GPU).
# The copy stops Run first, then destroys the context.
rewrite gorgonia/cuda/external.go $'\tif err := e.c.Close(); err != nil {\n\t\treturn errors.Wrapf(err, "Failed to cloes CUDA Context ")\n\t}\n\n\truntime.Gosched() // make sure everyone has a fair play\n\te.finishChan <- struct{}{}\n\te.finishChan2 <- struct{}{} // wait\n' \
	$'\truntime.Gosched() // make sure everyone has a fair play\n\te.finishChan <- struct{}{}\n\te.finishChan2 <- struct{}{} // wait: Run has stopped (mnist cuda-deps.sh: before the context goes, not after)\n\n\tif err := e.c.Close(); err != nil {\n\t\treturn errors.Wrapf(err, "Failed to cloes CUDA Context ")\n\t}\n' 1

# Obstacle 6: RunAll's thread hand-over. Upstream's RunAll locks the caller
# to its thread and runs the program on a second goroutine, so that batched
# CUDA calls can be flushed on the locked thread; each training step (one
# run) then pays two hand-overs between threads. Our ops launch their own
# work and queue nothing, so for a program made only of them (runsHere, in
# scripts/cudacompat/vm_tape_run_here.go.in) RunAll runs it on the calling
# goroutine (runAllHere, shared with cpu-deps.sh); any other program runs as
# upstream's. Measured without a GPU (scripts/host-overhead.sh), the host's
# share of a step fell from about 90 to 46 us.
rewrite gorgonia/vm_tape.go $'func (m *tapeMachine) RunAll() (err error) {\n\truntime.LockOSThread()\n' \
	$'func (m *tapeMachine) RunAll() (err error) {\n\tif m.runsHere() {\n\t\treturn m.runAllHere() // mnist cuda-deps.sh: nothing batched to flush\n\t}\n\truntime.LockOSThread()\n' 1
append_run_all_here gorgonia/vm_tape.go
install -m 0644 "$compat_dir/vm_tape_run_here.go.in" "$gorgonia_dir/vm_tape_mnist_cuda.go"

cat >"$gorgonia_dir/MNIST-ADAPTED.md" <<EOF
# Generated: adapted copy of $GORGONIA_MODULE $GORGONIA_VERSION

Written by the mnist project's scripts/cuda-deps.sh from the module cache copy
of $GORGONIA_MODULE@$GORGONIA_VERSION. Do not edit; rerun the script.

- cuda.go: without its init function, which logged "Using CUDA build" to stderr
  before main at every start of a cuda binary, and without the "log" import
  that only that function used.
- cuda/external.go: Engine.Run makes the engine's context current on its
  thread before it creates the cuBLAS handle there (one line added), and
  Engine.Close stops Run before it destroys the context, not after.
- vm_tape.go: RunAll runs the program on the calling goroutine (runAllHere,
  appended) when runsHere says nothing in it needs flushing of batched CUDA
  calls, instead of locking the thread and waiting for a second goroutine.
- vm_tape_mnist_cuda.go (added): runsHere and the CUDASelfLauncher interface
  that the project's ops implement.
- Removed: examples/, media/, docs/, .github/, cmd/, "cuda modules"/, *_test.go.
EOF
chmod 0644 "$gorgonia_dir/MNIST-ADAPTED.md"

# --- swap in ----------------------------------------------------------------

for name in cu gorgonia; do
	rm -rf "${out_dir:?}/.cuda-deps/$name"
	mv "$work/$name" "$out_dir/.cuda-deps/$name"
done
