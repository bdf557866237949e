#!/usr/bin/env bash
# gpu-bundle.sh - prepare .gpu-bundle/ for building and running on a GPU host
# that has a CUDA toolkit but no Go and no network.
#
# Usage: scripts/gpu-bundle.sh
# Environment:
#   MNIST_DATA_DIR  where the four MNIST .gz files are
#                   (default $HOME/.cache/mnist-gorgonia; `make data` fills it)
#   BUNDLE_DIR      output folder (default .gpu-bundle, git-ignored)
#
# The bundle (must stay under 60 MiB) holds:
#   go-toolchain.tar.xz  trimmed local Go toolchain (scripts/pack-go-toolchain.sh)
#   vendor.tar.xz        `go mod vendor` of the cuda build (go.cuda.mod), so the
#                        adapted gorgonia.org/cu and gorgonia.org/gorgonia
#                        travel inside vendor/
#   mnist/*.gz           the MNIST files, checked against their SHA-256
#   MANIFEST.txt         versions, the go.mod it was made for, file digests
# Copy the working tree plus .gpu-bundle/ to the host and run
# scripts/gpu-host-run.sh there. Rebuild the bundle after changing go.mod.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
bundle=${BUNDLE_DIR:-$repo_root/.gpu-bundle}
data_dir=${MNIST_DATA_DIR:-$HOME/.cache/mnist-gorgonia}
max_bytes=$((60 * 1024 * 1024))

die() {
	echo "gpu-bundle: $*" >&2
	exit 1
}

# The canonical MNIST digests (the files yann.lecun.com served).
declare -A mnist_sha256=(
	[train-images-idx3-ubyte.gz]=440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609
	[train-labels-idx1-ubyte.gz]=3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c
	[t10k-images-idx3-ubyte.gz]=8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6
	[t10k-labels-idx1-ubyte.gz]=f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6
)
for f in "${!mnist_sha256[@]}"; do
	[[ -f "$data_dir/$f" ]] || die "missing $data_dir/$f: run 'make data' or set MNIST_DATA_DIR"
	echo "${mnist_sha256[$f]}  $data_dir/$f" | sha256sum --check --quiet - ||
		die "$data_dir/$f does not have the canonical SHA-256"
done

mkdir -p "$bundle"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Reproducible tar.xz of DIR's entry NAME.
pack() {
	local dir=$1 name=$2 out=$3
	tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' -cf - "$name" |
		xz -T0 -6 >"$out.tmp"
	mv -f "$out.tmp" "$out"
}

# 1. Module dependencies of the cuda build, with the adapted cu and gorgonia.
echo "gpu-bundle: vendoring the cuda build's modules" >&2
scripts/cuda-deps.sh
GOFLAGS=-mod=mod go mod vendor -modfile "$repo_root/go.cuda.mod" -o "$work/vendor"
for m in cu gorgonia; do
	grep -q "^# gorgonia\\.org/$m v[^ ]* => \\./\\.cuda-deps/$m\$" "$work/vendor/modules.txt" ||
		die "vendor/modules.txt lacks the adapted gorgonia.org/$m"
done
[[ -f "$work/vendor/gorgonia.org/cu/mnist_cudacompat.h" && -f "$work/vendor/gorgonia.org/cu/dnn/cudnn.go" ]] ||
	die "the vendored gorgonia.org/cu is not the adapted copy"
# go mod vendor copies a package folder's non-Go files too, so the copy's
# MNIST-ADAPTED.md travels with it; the banner must be gone from cuda.go.
vendored_gorgonia=$work/vendor/gorgonia.org/gorgonia
if [[ ! -f "$vendored_gorgonia/MNIST-ADAPTED.md" || ! -f "$vendored_gorgonia/cuda.go" ]] ||
	grep -q 'Using CUDA build' "$vendored_gorgonia/cuda.go"; then
	die "the vendored gorgonia.org/gorgonia is not the adapted copy"
fi
pack "$work" vendor "$bundle/vendor.tar.xz"

# 2. The Go toolchain; repacked only when the local Go changed (30 s).
go_version=$(go env GOVERSION)
go_platform="$(go env GOHOSTOS)/$(go env GOHOSTARCH)"
if [[ ! -f "$bundle/go-toolchain.tar.xz" || "$(cat "$bundle/go-toolchain.id" 2>/dev/null)" != "$go_version $go_platform" ]]; then
	echo "gpu-bundle: packing $go_version $go_platform" >&2
	scripts/pack-go-toolchain.sh "$bundle/go-toolchain.tar.xz"
	echo "$go_version $go_platform" >"$bundle/go-toolchain.id"
fi

# 3. MNIST.
rm -rf "$bundle/mnist"
mkdir -p "$bundle/mnist"
for f in "${!mnist_sha256[@]}"; do
	install -m 0644 "$data_dir/$f" "$bundle/mnist/$f"
done

# 4. Manifest: what the bundle was made from, checked by gpu-host-run.sh.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+uncommitted"
{
	echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $commit"
	echo "go: $go_version $go_platform"
	echo "go.mod sha256: $(sha256sum go.mod | cut -d' ' -f1)"
	echo "files:"
	(cd "$bundle" && find . -type f ! -name MANIFEST.txt -printf '%P\n' | LC_ALL=C sort | xargs sha256sum | sed 's/^/  /')
} >"$bundle/MANIFEST.txt"

total=$(du -sb "$bundle" | cut -f1)
((total < max_bytes)) || die "bundle is $((total / 1024 / 1024)) MiB, over the 60 MiB limit"
echo "gpu-bundle: $bundle is ready ($((total / 1024 / 1024)) MiB):" >&2
(cd "$bundle" && du -h --apparent-size ./* | sed 's/^/  /') >&2
