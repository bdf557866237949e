#!/usr/bin/env bash
# test-cuda-cpu.sh - the cuda build's tests on a machine without a GPU
# (make test-cuda-cpu), against the cpu flavour of scripts/nullcuda: a CUDA
# driver and cuBLAS that run the kernels of gpu/kernels/mlp.cu, compiled for
# the host from the same source, and SGEMM on the CPU, replaying captured
# CUDA graphs too.
#
# Usage: scripts/test-cuda-cpu.sh [PACKAGE...]
#   (default: ./gpu/ under the race detector, then its kernels'
#   thread-order test without it, then ./cmd/train/)
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
# gpu/ under the race detector: its engines hand work between goroutines
# (Gorgonia's engine runs a goroutine of its own per machine).
run -race ./gpu/
# The kernels' independence of thread order checks mlp.cu, not Go, and is
# skipped under the race detector, four times slower there.
run -run '^TestKernelsIndependentOfThreadOrder$' ./gpu/
run ./cmd/train/
