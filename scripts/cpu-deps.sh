#!/usr/bin/env bash
# cpu-deps.sh - generate the adapted copy of gorgonia.org/gorgonia that the
# CPU build uses, and the mod file that points at it.
#
# Usage: scripts/cpu-deps.sh [OUTDIR]   (default: the repository root)
#   writes OUTDIR/.cpu-deps/gorgonia  adapted copy (git-ignored)
#          OUTDIR/go.cpu.mod          go.mod + replace gorgonia.org/gorgonia => ./.cpu-deps/gorgonia
#          OUTDIR/go.cpu.sum          copy of go.sum
# `make build`, `make train`, `make test` and `make bench` run it, then build
# with `-modfile go.cpu.mod`. A plain `go build ./cmd/train` uses Gorgonia as
# published: the same results, bit for bit, more slowly.
#
# Why this exists. Gorgonia's tapeMachine.RunAll locks the calling goroutine
# to its OS thread and runs the program on a goroutine of its own, waiting
# for it in a select, so that a device engine's batched work can be flushed
# on the locked thread. With no device there is nothing to flush, but every
# run still hands the processor to another thread and back, each time
# through a futex wake-up: one training step of this program (a run) paid
# about 300 µs of waiting for 210 µs of work on one core, and 5 epochs took
# 5.28 s instead of 1.75 s (docs/performance.md). The copy's RunAll runs the
# program on the calling goroutine when the machine has no work channel (no
# external device), and is upstream's otherwise; nothing else changes.
# The rewrite checks that upstream is what it was written for, and the
# output depends only on the pinned version: running this twice yields the
# same tree (model/cpudeps_test.go).
set -euo pipefail

GORGONIA_MODULE=gorgonia.org/gorgonia
GORGONIA_VERSION=v0.9.18

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_dir=${1:-$repo_root}
if [[ $# -gt 1 ]]; then
	echo "usage: $0 [OUTDIR]" >&2
	exit 2
fi
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

die() {
	echo "cpu-deps: $*" >&2
	exit 1
}

go_mod="$repo_root/go.mod"
# check_go_mod, write_modfile, copy_module, rewrite and append_run_all_here.
# shellcheck source=deps-tools.sh
source "$repo_root/scripts/deps-tools.sh"
check_go_mod "$GORGONIA_MODULE" "$GORGONIA_VERSION"

# The copy is made in a scratch folder and swapped in at the end, so an
# interrupted run never leaves a half-adapted copy behind.
mkdir -p "$out_dir/.cpu-deps"
work=$(mktemp -d "$out_dir/.cpu-deps/.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

copy_module "$GORGONIA_MODULE" "$GORGONIA_VERSION" gorgonia
# Not needed to build any package of the module, and most of its size.
rm -rf "$work/gorgonia/examples" "$work/gorgonia/media" "$work/gorgonia/docs" \
	"$work/gorgonia/.github" "$work/gorgonia/cmd" "$work/gorgonia/cuda modules"

rewrite gorgonia/vm_tape.go $'func (m *tapeMachine) RunAll() (err error) {\n\truntime.LockOSThread()\n' \
	$'func (m *tapeMachine) RunAll() (err error) {\n\tif m.ExternMetadata.WorkAvailable() == nil {\n\t\treturn m.runAllHere() // mnist cpu-deps.sh: no device to feed\n\t}\n\truntime.LockOSThread()\n' 1

append_run_all_here gorgonia/vm_tape.go

cat >"$work/gorgonia/MNIST-ADAPTED.md" <<EOF
# Generated: adapted copy of $GORGONIA_MODULE $GORGONIA_VERSION for the CPU build

Written by the mnist project's scripts/cpu-deps.sh from the module cache copy
of $GORGONIA_MODULE@$GORGONIA_VERSION. Do not edit; rerun the script.

- vm_tape.go: RunAll runs the program on the calling goroutine (runAllHere,
  appended) when the machine has no external device, instead of locking the
  thread and waiting for a second goroutine.
- Removed: examples/, media/, docs/, .github/, cmd/, "cuda modules"/, *_test.go.
EOF
chmod 0644 "$work/gorgonia/MNIST-ADAPTED.md"

rm -rf "$out_dir/.cpu-deps/gorgonia"
mv "$work/gorgonia" "$out_dir/.cpu-deps/gorgonia"

write_modfile cpu "the CPU build uses an adapted copy of gorgonia" "$GORGONIA_MODULE => ./.cpu-deps/gorgonia"
