#!/usr/bin/env bash
# test-cuda-cpu.sh - the cuda build's tests on a machine without a GPU
# (make test-cuda-cpu), against the cpu flavour of scripts/nullcuda: a CUDA
# driver and cuBLAS that run the kernels of gpu/kernels/mlp.cu, compiled for
# the host from the same source, and SGEMM on the CPU, replaying captured
# CUDA graphs too.
#
# Usage: scripts/test-cuda-cpu.sh [PACKAGE...]
#   (default: ./gpu/ under the race detector, then its kernels'
#   thread-order test without it, and ./cmd/train/ beside them)
#
# Every GPU test of gpu/ then runs for real (parity with the float64
# reference for each engine, determinism, exact resume, the device loop,
# the captured step), but for TestGraphOnGPU, which needs Gorgonia's own
# kernels; cmd/train's tests run the cuda trainer end to end with the
# default engine (Gorgonia's). What this cannot check is what only a GPU
# has: the PTX itself, the device's math to the last bit, streams running
# concurrently, and speed (scripts/gpu-host-run.sh, on a GPU host).
# GO_TEST_FLAGS (default -short) go to go test.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

# The cuda setup (CUDA_HOME, cgo flags, -tags cuda -modfile go.cuda.mod).
eval "$(bash scripts/build-cuda.sh env)"
lib_dir=$repo_root/build/nullcuda/cpu
bash scripts/nullcuda/build.sh cpu "$lib_dir"

run() {
	# shellcheck disable=SC2086 # GO_TEST_FLAGS is a list of flags
	LD_LIBRARY_PATH=$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
		go test -count=1 ${GO_TEST_FLAGS--short} "$@"
}
if [[ $# -gt 0 ]]; then
	run "$@"
	exit
fi
# cmd/train/ runs beside gpu/: a trainer on the nullcuda kernels keeps one
# core busy, and so, mostly, does gpu/, so on two cores the pair takes about
# as long as the longer of the two, not their sum. cmd/train/'s output is
# held back until gpu/'s is out, so that the two do not interleave. It
# runs as a process group of its own (set -m), so that a Ctrl-C ends it
# along with this script.
train_log=$(mktemp)
set -m
run ./cmd/train/ >"$train_log" 2>&1 &
train_pid=$!
set +m
trap 'kill -- -"$train_pid" 2>/dev/null || true; rm -f "$train_log"' EXIT
gpu_status=0
{
	# gpu/ under the race detector: its engines hand work between goroutines
	# (Gorgonia's engine runs a goroutine of its own per machine).
	run -race ./gpu/ &&
	# The kernels' independence of thread order checks mlp.cu, not Go, and is
	# skipped under the race detector, four times slower there.
	run -run '^TestKernelsIndependentOfThreadOrder$' ./gpu/
} || gpu_status=$?
train_status=0
wait "$train_pid" || train_status=$?
cat "$train_log"
if ((gpu_status != 0 || train_status != 0)); then
	exit 1
fi
