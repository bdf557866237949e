#!/usr/bin/env bash
# pack-go-toolchain.sh - pack a trimmed copy of the local Go toolchain.
#
# Usage: scripts/pack-go-toolchain.sh OUT.tar.xz
#
# For building on a machine that has no Go and no network (the GPU host, see
# scripts/gpu-bundle.sh). The archive holds one top folder, go/, that works as
# a GOROOT wherever it is unpacked (the go command finds its root from its
# own path). It keeps what `go build`, `go vet` and `go test` of a cgo program
# need and drops the rest, about a third of the size:
#   kept:    bin/go, bin/gofmt; the compile, link, asm, cgo, vet and cover
#            tools; pkg/include (cgo headers); the standard library sources
#            (src/ with src/vendor, go.mod, go.sum; src/cmd/go.mod and go.sum
#            only); VERSION, go.env, LICENSE, PATENTS; lib/time/zoneinfo.zip
#   dropped: tests (*_test.go, testdata/), the toolchain's own sources
#            (src/cmd), docs, api/, test/, misc/, other tools
# The standard library is compiled into the build cache on first use, as with
# any Go >= 1.20 distribution.
set -euo pipefail

die() {
	echo "pack-go-toolchain: $*" >&2
	exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 OUT.tar.xz"
out=$1
[[ "$out" == *.tar.xz ]] || die "output must end in .tar.xz"

goroot=$(GOTOOLCHAIN=local go env GOROOT)
goos=$(go env GOHOSTOS)
goarch=$(go env GOHOSTARCH)
version=$(head -n1 "$goroot/VERSION")
[[ -x "$goroot/bin/go" ]] || die "no go binary in $goroot/bin"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/go"
mkdir -p "$root/bin" "$root/pkg/tool/${goos}_$goarch" "$root/lib/time"

# copy SRC... relative to GOROOT into the staged root, keeping paths.
copy() {
	(cd "$goroot" && cp --parents -p "$@" "$root/")
}

copy VERSION go.env LICENSE PATENTS
copy bin/go bin/gofmt
for tool in compile link asm cgo vet cover; do
	[[ -x "$goroot/pkg/tool/${goos}_$goarch/$tool" ]] || die "missing tool $tool in $goroot/pkg/tool/${goos}_$goarch"
	copy "pkg/tool/${goos}_$goarch/$tool"
done
(cd "$goroot" && find pkg/include -type f -print0 | xargs -0 cp --parents -p -t "$root/")
[[ -f "$goroot/lib/time/zoneinfo.zip" ]] && copy lib/time/zoneinfo.zip

# Standard library sources without tests, test data or the toolchain's own
# sources (src/cmd); cmd's go.mod/go.sum stay so the "cmd" module still
# resolves if something asks for it.
(
	cd "$goroot"
	find src \( -path src/cmd -o -name testdata \) -prune -o -type f ! -name '*_test.go' -print0 |
		xargs -0 cp --parents -p -t "$root/"
	for f in src/cmd/go.mod src/cmd/go.sum; do
		[[ -f "$f" ]] && cp --parents -p "$f" "$root/"
	done
)

cat >"$root/PACKED.txt" <<EOF
Trimmed $version for $goos/$goarch, packed by the mnist project's
scripts/pack-go-toolchain.sh from $goroot. Use it as GOROOT (put go/bin on
PATH and set GOTOOLCHAIN=local). Go is BSD-licensed: see LICENSE and PATENTS.
EOF

# Reproducible archive: fixed order, owners and times.
mkdir -p "$(dirname "$out")"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' \
	-cf - go | xz -T0 -6 >"$out.tmp"
mv -f "$out.tmp" "$out"
echo "pack-go-toolchain: $version $goos/$goarch -> $out ($(du -h "$out" | cut -f1))" >&2
