#!/usr/bin/env bash
# cuda-deps.sh - generate the adapted gorgonia.org/cu that the cuda build uses.
#
# Usage: scripts/cuda-deps.sh [--modfile-only] [OUTDIR]
#   OUTDIR defaults to the repository root. It receives:
#     .cuda-deps/cu   adapted copy of gorgonia.org/cu (git-ignored)
#     go.cuda.mod     go.mod + "replace gorgonia.org/cu => ./.cuda-deps/cu"
#     go.cuda.sum     copy of go.sum
#   --modfile-only writes just go.cuda.mod and go.cuda.sum. That is all a
#   vendored, offline build needs (the adapted cu then lives in vendor/).
#
# Why this exists. `go build -tags cuda` of gorgonia.org/gorgonia v0.9.18 with
# gorgonia.org/cu v0.9.6 as published cannot work here:
#   1. gorgonia's CUDA engine imports gorgonia.org/cu/dnn, which needs cuDNN
#      (cudnn.h, cuDNN 7/8 API). We have no cuDNN and use none of it.
#   2. cu fails to compile against CUDA 13 headers (cuCtxCreate, cuMemAdvise,
#      cuMemPrefetchAsync, cuGraphAddDependencies, cuGraphGetEdges changed).
#   3. cu's package init calls cuInit and os.Exit(1)s on failure, so a cuda
#      binary dies before main on a machine without a usable GPU.
#
# Chosen mechanism: a second mod file plus a generated module folder.
# We copy cu from the module cache (verified against go.sum by `go mod
# download`) into the git-ignored .cuda-deps/cu, apply our own changes from
# scripts/cudacompat/ (a cuDNN-free stand-in for cu/dnn, a compat header with
# CUDA 11/12/13 shims, an explicit Init instead of the exiting init), and
# build with `-modfile go.cuda.mod`, whose only difference from go.mod is
# `replace gorgonia.org/cu => ./.cuda-deps/cu`.
# Alternatives rejected:
#   - `go build -overlay` is refused for files under GOMODCACHE ("Files
#     beneath GOMODCACHE must not be replaced").
#   - a replace directive in go.mod itself would make the CPU build depend on
#     a generated folder, and committing a patched fork would put third-party
#     source in this repository.
#   - -tags/ldflags cannot remove a package's cgo files or its init function.
# The output depends only on the pinned cu version and scripts/cudacompat/, so
# running this twice yields the same tree (tested by gpu/cudadeps_test.go).
set -euo pipefail

# The rewrites below are written for exactly this version; go.mod must agree.
CU_MODULE=gorgonia.org/cu
CU_VERSION=v0.9.6

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
grep -Eq "^[[:space:]]*${CU_MODULE//./\\.} ${CU_VERSION//./\\.}([[:space:]]|$)" "$go_mod" ||
	die "go.mod does not require $CU_MODULE $CU_VERSION; the adaptation in scripts/cuda-deps.sh is written for that version"
if grep -Eq "^[[:space:]]*replace[[:space:]].*${CU_MODULE//./\\.}|^[[:space:]]*${CU_MODULE//./\\.}[[:space:]]*(v[^[:space:]]*)?[[:space:]]*=>" "$go_mod"; then
	die "go.mod already replaces $CU_MODULE; refusing to add a second replace"
fi

write_modfiles() {
	local tmp
	tmp=$(mktemp "$out_dir/.go.cuda.mod.XXXXXX")
	{
		cat "$go_mod"
		printf '\n// Added by scripts/cuda-deps.sh: the cuda build uses an adapted copy of cu.\n'
		printf 'replace %s => ./.cuda-deps/cu\n' "$CU_MODULE"
	} >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$out_dir/go.cuda.mod"
	# The replaced module is a directory, which needs no checksum; every other
	# module is the same as in go.sum.
	install -m 0644 "$repo_root/go.sum" "$out_dir/go.cuda.sum"
}

write_modfiles
if $modfile_only; then
	exit 0
fi

# --- .cuda-deps/cu ----------------------------------------------------------

# `go mod download` verifies the module against go.sum before we copy it.
# Run from the repository root so go.mod/go.sum are the ones consulted, and
# with -mod=mod so a GOFLAGS=-mod=vendor environment cannot get in the way.
src_dir=$(cd "$repo_root" && GOFLAGS=-mod=mod go mod download -json "$CU_MODULE@$CU_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[[ -n "$src_dir" && -f "$src_dir/go.mod" ]] ||
	die "could not locate $CU_MODULE@$CU_VERSION in the module cache (is the Go module proxy reachable?)"

mkdir -p "$out_dir/.cuda-deps"
# Build in a scratch folder next to the target and swap it in at the end, so
# an interrupted run never leaves a half-adapted copy behind.
work=$(mktemp -d "$out_dir/.cuda-deps/.cu.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
dst="$work/cu"

cp -R "$src_dir" "$dst"
# Module cache files are read-only; normalise modes so the tree is editable,
# deletable and hashes the same whatever umask the copy ran under.
chmod -R u+w "$dst"
find "$dst" -type d -exec chmod 0755 {} +
find "$dst" -type f -exec chmod 0644 {} +

# Not needed to build the packages gorgonia imports: upstream's tests and test
# data, and the code generators under cmd/ (which need cuDNN/cuBLAS headers
# and extra modules of their own).
rm -rf "$dst/cmd" "$dst/testdata"
find "$dst" -name '*_test.go' -delete

# Obstacle 1: replace cu/dnn (cgo, cuDNN) with our cuDNN-free stand-in.
rm -rf "$dst/dnn"
mkdir "$dst/dnn"
install -m 0644 "$compat_dir/cudnn.go.in" "$dst/dnn/cudnn.go"

# Obstacle 3: upstream cu.go holds only the exiting init() and Version();
# replace it by our Init (plus Version, CompiledVersion, ErrorString,
# Initialized). The rewrites further down make NumDevices and GetDevice call
# Init, so code written for upstream's eager init (gorgonia) keeps working
# while a caller that wants to set CUDA_VISIBLE_DEVICES first still can.
grep -q 'os.Exit(1)' "$dst/cu.go" && grep -q 'C.cuInit' "$dst/cu.go" ||
	die "upstream cu.go is not the expected one; review the adaptation"
[[ $(grep -c '^func ' "$dst/cu.go") -eq 2 ]] ||
	die "upstream cu.go has functions besides init and Version; review the adaptation"
rm "$dst/cu.go"
install -m 0644 "$compat_dir/cu_init.go.in" "$dst/mnist_init.go"

# Obstacle 2: CUDA 13 signature changes. Route the affected calls through the
# static inline wrappers of mnist_cudacompat.h (which includes cuda.h).
install -m 0644 "$compat_dir/mnist_cudacompat.h" "$dst/mnist_cudacompat.h"

# rewrite FILE FROM TO COUNT: replace the literal FROM by TO in FILE and check
# it occurred exactly COUNT times, so an unexpected upstream file fails loudly.
# FROM and TO may span lines; perl reads the whole file (-0777) and treats
# FROM literally (\Q...\E).
rewrite() {
	local file=$dst/$1 from=$2 to=$3 want=$4 got
	got=$(FROM=$from perl -0777 -ne 'print scalar(() = /\Q$ENV{FROM}\E/g)' "$file")
	[[ "$got" -eq "$want" ]] ||
		die "$1: expected $want occurrence(s) of '$from', found $got"
	FROM=$from TO=$to perl -0777 -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$file"
}

for f in addressing.go ctx.go ctx_debug.go cucontext.go graph.go; do
	rewrite "$f" '// #include <cuda.h>' '// #include "mnist_cudacompat.h"' 1
done
rewrite ctx.go 'C.cuCtxCreate(' 'C.mnist_cuCtxCreate(' 2
rewrite ctx_debug.go 'C.cuCtxCreate(' 'C.mnist_cuCtxCreate(' 2
rewrite cucontext.go 'C.cuCtxCreate(' 'C.mnist_cuCtxCreate(' 1
rewrite addressing.go 'C.cuMemAdvise(' 'C.mnist_cuMemAdvise(' 1
rewrite addressing.go 'C.cuMemPrefetchAsync(' 'C.mnist_cuMemPrefetchAsync(' 1
rewrite graph.go 'C.cuGraphAddDependencies(' 'C.mnist_cuGraphAddDependencies(' 1
rewrite graph.go 'C.cuGraphGetEdges(' 'C.mnist_cuGraphGetEdges(' 1

# Obstacle 3, continued: initialise on first use. Device handles only come
# from GetDevice and every program asks NumDevices or GetDevice first.
init_first=$'\tif err = Init(); err != nil {\n\t\treturn\n\t}\n'
rewrite api.go $'func GetDevice(ordinal int) (device Device, err error) {\n' \
	$'func GetDevice(ordinal int) (device Device, err error) {\n'"$init_first" 1
rewrite api.go $'func NumDevices() (count int, err error) {\n' \
	$'func NumDevices() (count int, err error) {\n'"$init_first" 1

# Nothing may still call the changed entry points directly.
if grep -rnE 'C\.(cuCtxCreate|cuMemAdvise|cuMemPrefetchAsync|cuGraphAddDependencies|cuGraphGetEdges)\(' --include='*.go' "$dst"; then
	die "call sites above still use CUDA entry points whose signature changed in CUDA 13"
fi

cat >"$dst/MNIST-ADAPTED.md" <<EOF
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
chmod 0644 "$dst/MNIST-ADAPTED.md"

rm -rf "$out_dir/.cuda-deps/cu"
mv "$dst" "$out_dir/.cuda-deps/cu"
