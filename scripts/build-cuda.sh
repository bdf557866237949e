#!/usr/bin/env bash
# build-cuda.sh - build (or vet/test) the CUDA flavour of the trainer.
#
# Usage:
#   scripts/build-cuda.sh                 build ./cmd/train -> bin/train-cuda
#   scripts/build-cuda.sh go ARGS...      run `go ARGS...` in the cuda setup,
#                                         e.g. `go vet ./...`, `go test ./gpu/`
#   scripts/build-cuda.sh env             print the settings as shell exports
#
# Environment:
#   CUDA_HOME  toolkit root; default /usr/local/cuda if it exists, else /usr
#              (Debian's nvidia-cuda-toolkit). Works with CUDA 11.8, 12.x, 13.x;
#              cuDNN is not needed.
#   TRAIN_CUDA_BIN  output binary (default bin/train-cuda)
#
# The cuda setup is: CGO on, CGO_CFLAGS/CGO_LDFLAGS pointing at the toolkit,
# and GOFLAGS += -tags=cuda -modfile=go.cuda.mod (see scripts/cuda-deps.sh for
# why a second mod file). With a vendor/ folder made from go.cuda.mod (the GPU
# host bundle, scripts/gpu-bundle.sh) it builds offline with -mod=vendor and
# only regenerates go.cuda.mod; otherwise it regenerates .cuda-deps/ (the
# adapted cu and gorgonia) first, which needs the module cache or the Go
# module proxy.
#
# Linking on a machine without the NVIDIA driver uses the toolkit's stub
# libcuda.so (lib64/stubs). That is link-time only: the binary records
# libcuda.so.1, which only the real driver provides, and the stub folder is
# never put on the run-time search path (checked after the build).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

die() {
	echo "build-cuda: $*" >&2
	exit 1
}

# --- toolkit ----------------------------------------------------------------

if [[ -z "${CUDA_HOME:-}" ]]; then
	if [[ -d /usr/local/cuda ]]; then
		CUDA_HOME=/usr/local/cuda
	else
		CUDA_HOME=/usr
	fi
fi
CUDA_HOME=${CUDA_HOME%/}
cuda_include=$CUDA_HOME/include
[[ -f "$cuda_include/cuda.h" ]] ||
	die "no cuda.h in $cuda_include: install the CUDA toolkit (Debian: apt-get install nvidia-cuda-toolkit nvidia-cuda-dev) or set CUDA_HOME"
cuda_version=$(sed -n 's/^#define CUDA_VERSION \([0-9]*\).*/\1/p' "$cuda_include/cuda.h" | head -n1)
[[ -n "$cuda_version" ]] || die "cannot read CUDA_VERSION from $cuda_include/cuda.h"
[[ -f "$cuda_include/cublas_v2.h" || -f "$cuda_include/cublas.h" ]] ||
	die "no cuBLAS headers in $cuda_include (Debian: nvidia-cuda-dev)"

# Library folders, real ones first. The linker takes the first libcuda.so it
# finds, so the stub folder goes last and only matters without a driver.
lib_dirs=()
stub_dirs=()
if [[ "$CUDA_HOME" == /usr ]]; then
	# Debian/Ubuntu packages: multiarch library folder, stubs beneath it.
	multiarch=$(gcc -print-multiarch 2>/dev/null || true)
	[[ -n "$multiarch" && -d "/usr/lib/$multiarch" ]] && lib_dirs+=("/usr/lib/$multiarch")
	[[ -n "$multiarch" && -d "/usr/lib/$multiarch/stubs" ]] && stub_dirs+=("/usr/lib/$multiarch/stubs")
else
	for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/$(uname -m)-linux/lib"; do
		[[ -d "$d" ]] && lib_dirs+=("$d")
	done
	for d in "$CUDA_HOME/lib64/stubs" "$CUDA_HOME/lib/stubs" "$CUDA_HOME/targets/$(uname -m)-linux/lib/stubs"; do
		[[ -d "$d" ]] && stub_dirs+=("$d")
	done
fi

cflags=()
[[ "$cuda_include" != /usr/include ]] && cflags+=("-I$cuda_include") # /usr/include is searched anyway
ldflags=()
for d in "${lib_dirs[@]}"; do
	ldflags+=("-L$d")
	# A toolkit outside the system folders (e.g. /usr/local/cuda) is usually not
	# on the loader's path; record it so bin/train-cuda finds libcublas.
	# DT_RUNPATH, so LD_LIBRARY_PATH still takes precedence.
	case "$d" in
	/usr/lib | /usr/lib64 | /usr/lib/*-linux-gnu | /lib | /lib64) ;;
	*) ldflags+=("-Wl,-rpath,$d") ;;
	esac
done
for d in "${stub_dirs[@]}"; do
	ldflags+=("-L$d")
done

ldflags+=(-Wl,--enable-new-dtags)

# join_flags OURS CALLERS: our flags go first; what the caller set is kept
# after them. Flags that already start with ours were set by this script (a
# test that runs it under `build-cuda.sh go test`) and stay as they are:
# doubled flags would change every cgo package's build key and rebuild them.
join_flags() {
	local ours=$1 callers=$2
	if [[ -n "$ours" && "$callers" != "$ours" && "$callers" != "$ours "* ]]; then
		callers="$ours${callers:+ $callers}"
	fi
	echo "$callers"
}
# CGO_CFLAGS must keep Go's default -O2 -g when the caller set nothing.
CGO_CFLAGS=$(join_flags "${cflags[*]}" "${CGO_CFLAGS:--O2 -g}")
CGO_LDFLAGS=$(join_flags "${ldflags[*]}" "${CGO_LDFLAGS:-}")
export CGO_ENABLED=1 CGO_CFLAGS CGO_LDFLAGS CUDA_HOME

# --- modules ----------------------------------------------------------------

goflags=(-tags=cuda "-modfile=$repo_root/go.cuda.mod")
[[ "$repo_root" != *" "* ]] || die "the repository path must not contain spaces (GOFLAGS cannot quote them)"
if [[ -f vendor/modules.txt ]]; then
	# Offline build from a vendored bundle: vendor/ already holds the adapted
	# cu and gorgonia (replace => ./.cuda-deps/...), so only the mod file is
	# needed.
	for m in cu gorgonia; do
		grep -q "^# gorgonia\\.org/$m v[^ ]* => \\./\\.cuda-deps/$m\$" vendor/modules.txt ||
			die "vendor/modules.txt was not made from go.cuda.mod (no adapted gorgonia.org/$m); remove vendor/ or rebuild the bundle"
	done
	scripts/cuda-deps.sh --modfile-only
	[[ " $(go env GOFLAGS) " == *" -mod=vendor "* ]] || goflags+=(-mod=vendor)
else
	scripts/cuda-deps.sh
fi
# Extend, not replace, the GOFLAGS the user has (environment or `go env -w`).
user_goflags=$(go env GOFLAGS)
export GOFLAGS="${user_goflags:+$user_goflags }${goflags[*]}"

# --- action -----------------------------------------------------------------

case "${1:-build}" in
build)
	[[ $# -le 1 ]] || die "usage: $0 [build | go ARGS... | env]"
	out=${TRAIN_CUDA_BIN:-bin/train-cuda}
	mkdir -p "$(dirname "$out")"
	echo "build-cuda: CUDA $((cuda_version / 1000)).$((cuda_version % 1000 / 10)) from $CUDA_HOME -> $out" >&2
	go build -o "$out" ./cmd/train
	# The stub libcuda must never be found at run time.
	if command -v readelf >/dev/null && readelf -d "$out" | grep -E 'R(UN)?PATH' | grep -q stubs; then
		die "$out has a stubs folder on its run-time search path"
	fi
	;;
go)
	shift
	exec go "$@"
	;;
env)
	for v in CUDA_HOME CGO_ENABLED CGO_CFLAGS CGO_LDFLAGS GOFLAGS; do
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	;;
*)
	die "usage: $0 [build | go ARGS... | env]"
	;;
esac
