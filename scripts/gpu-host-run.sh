#!/usr/bin/env bash
# gpu-host-run.sh - build, test and run the cuda trainer on a GPU host that
# has a CUDA toolkit (nvcc, cuBLAS), gcc and python3, but no Go and no network.
#
# Usage (from a copy of the working tree plus .gpu-bundle/, made here by
# scripts/gpu-bundle.sh):
#   bash scripts/gpu-host-run.sh RESULTS_DIR
#
# Steps, each time-limited, logged to RESULTS_DIR/<step>.log with tee, and
# run even when an earlier one failed (except that nothing runs without the
# unpacked toolchain). First the set-up, then the timed steps one at a time,
# with the GPU to themselves, then the untimed ones together, beside each
# other (they share the GPU and the CPUs, and only their results count):
#   host        machine, driver, toolkit, bundle manifest
#   unpack      Go toolchain to $GPU_WORK_DIR, vendor/ into the tree
#   build       make build-cuda (or scripts/build-cuda.sh without make)
#   build-tests the test binaries of gpu/ and cmd/train/ (go test -c), so
#               that the timed benchmarks and the tests that run together
#               start without compiling
#   nvidia-smi
# timed:
#   train-native    make train-cuda TRAIN_FLAGS="-log-format json -engine native"
#                   (else bin/train-cuda ...), default training flags, our engine
#   torch       python3 scripts/torch_mnist.py --device cuda --json, if present
#   torch-graph the same with the whole step captured as a CUDA graph with
#               fused Adam (if that capture fails, torch-graph_foreach: with
#               torch's default Adam)
#   train-persistent, train-fused, train-cudagraph, train-gorgonia  the same
#               as train-native with each other engine (gorgonia: Gorgonia's
#               CUDA tape machine); then the table of their train seconds
#               against PyTorch's (RESULTS_DIR/speed.md)
#   batches     samples/s at batch 32, 256 and 1024 (one epoch each) with each
#               engine and PyTorch eager and graph-captured with fused Adam
#               (and, at 32, graph-captured with torch's default Adam, and
#               torch.compile), then the table (RESULTS_DIR/batches.md)
#   bench-gpu   per-step time of each engine (BenchmarkEngineStepAt, with
#               the cudagraph and fused engines also without Adam's table
#               of step sizes: ENGINE-rates-worked-out), of
#               the native engine's Step (BenchmarkNativeStep), and of a
#               native step's parts, added one at a time (BenchmarkStepParts),
#               and of a persistent step's barriers, then its phases added
#               one at a time, then a whole step with SGD instead of Adam
#               (BenchmarkPersistentParts)
#   host-share  the same steps against scripts/nullcuda (no GPU work): the
#               host's share of each step on this CPU (scripts/host-overhead.sh)
# together (untimed):
#   test-gpu    go test -tags cuda ./gpu/ (via build-cuda.sh): parity with the
#               CPU reference for every engine, placement listing
#   seeds       seeds 1-5 with each engine and PyTorch with its step
#               captured as a CUDA graph with fused Adam (if that capture
#               fails, with torch's default Adam, then eager), one after
#               another, then the table of their test accuracy and loss
#               (RESULTS_DIR/seeds.md; logs in RESULTS_DIR/seeds/)
#   test-cli    go test -short ./cmd/train/ (and data/, model/kernels/) in the
#               cuda setup, so the trainer's tests train on the GPU (with the
#               default engine, Gorgonia's)
#   sanitize    compute-sanitizer's memcheck, racecheck and synccheck over the
#               captured and persistent steps' reference tests and the grid
#               barrier's test, if the toolkit has compute-sanitizer
# then RESULTS_DIR/summary.txt. Exit status 0 only if every step passed.
# Without RESUME, a call first removes what an earlier one left in
# RESULTS_DIR (its logs, tables, placement listing and summary), so that
# nothing a call skips shows an earlier call's result.
#
# Environment (all optional):
#   CUDA_HOME      default /usr/local/cuda (else newest /usr/local/cuda-*, else nvcc's)
#   BUNDLE_DIR     default .gpu-bundle
#   GPU_WORK_DIR   toolchain and build cache, default .gpu-host/work (git-
#                  ignored, so a runner that keeps ignored files between
#                  calls keeps it for RESUME=1)
#   BUDGET_S       wall-clock budget for all steps, default 540
#   GO_TEST_FLAGS  extra flags for the go test steps, default -short
#   TRAIN_LIMIT_S  time limit of each training run, default 200
#   SKIP_TORCH     set to skip every PyTorch run: torch, torch-graph (or
#                  torch-graph_foreach), and PyTorch's runs in the seeds and
#                  batches steps
#   SKIP_TRAIN     set to skip every training run: the timed ones (ours and
#                  PyTorch's), batches and seeds (tests only)
#   SEEDS          the seeds of the seeds step, default "1 2 3 4 5" (empty: skip it)
#   BATCHES        the batch sizes of the batches step, default "32 256 1024" (empty: skip it)
#   SKIP_TESTS     set to skip the test steps (build and train only)
#   KEEP_VENDOR=1  keep vendor/ afterwards (it is removed by default, see finish)
#   RESUME=1       a second call after one the budget cut short, on the same
#                  host with the same RESULTS_DIR and GPU_WORK_DIR: a step
#                  that finished ok in an earlier call is not run again (but
#                  host, unpack, build and build-tests, seconds with the
#                  build cache), and the seeds and batches steps run only
#                  the runs that left no evaluation line
#   PACK_TO        a folder: after every step and at the end, copy
#                  summary.txt there and pack the whole RESULTS_DIR into
#                  PACK_TO/results.tgz (for a runner that brings back only a
#                  few files: PACK_TO=$OUT with RESULTS_DIR outside $OUT; a
#                  runner that kills the script early still finds the steps
#                  that ended)
# Nothing here regenerates files that need the network or nvcc: the PTX
# (gpu/kernels/*.ptx and gpu/kernels/gorgonia/*.ptx) is committed and the
# adapted gorgonia.org/cu and gorgonia.org/gorgonia are in vendor/.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
caller_dir=$PWD # a relative RESULTS_DIR is the caller's
cd "$repo_root"

self=$repo_root/scripts/gpu-host-run.sh
# The cuda build's engines (gpu.EngineNames), in the order they train: our
# own first, because they are quick, then Gorgonia's.
engines="native persistent fused cudagraph gorgonia"
bundle=${BUNDLE_DIR:-$repo_root/.gpu-bundle}
work=${GPU_WORK_DIR:-$repo_root/.gpu-host/work}
# The toolkit: CUDA_HOME, else /usr/local/cuda, else the newest
# /usr/local/cuda-X.Y, else the one whose nvcc is on PATH.
if [[ -z "${CUDA_HOME:-}" ]]; then
	CUDA_HOME=/usr/local/cuda
	if [[ ! -f "$CUDA_HOME/include/cuda.h" ]]; then
		for d in $(ls -d /usr/local/cuda-* 2>/dev/null | sort -V -r); do
			if [[ -f "$d/include/cuda.h" ]]; then
				CUDA_HOME=$d
				break
			fi
		done
	fi
	if [[ ! -f "$CUDA_HOME/include/cuda.h" ]] && command -v nvcc >/dev/null; then
		CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
	fi
fi
export CUDA_HOME
case $(uname -m) in
x86_64) host_platform=linux/amd64 ;;
aarch64 | arm64) host_platform=linux/arm64 ;;
*) host_platform="linux/$(uname -m)" ;;
esac

# --- steps that are shell functions (run as `gpu-host-run.sh --step NAME`
# so that `timeout` can limit them like any other command) ------------------

step_host() {
	echo "## uname: $(uname -a)"
	echo "## cpus: $(nproc)"
	echo "## CUDA_HOME=$CUDA_HOME"
	grep -m1 '^#define CUDA_VERSION' "$CUDA_HOME/include/cuda.h" || echo "no $CUDA_HOME/include/cuda.h"
	if [[ -f "$CUDA_HOME/version.json" ]]; then head -c 600 "$CUDA_HOME/version.json" && echo; fi
	if [[ -x "$CUDA_HOME/bin/nvcc" ]]; then "$CUDA_HOME/bin/nvcc" --version | tail -n 2; else echo "no $CUDA_HOME/bin/nvcc"; fi
	ls "$CUDA_HOME"/lib64/libcublas.so* 2>/dev/null || echo "no libcublas in $CUDA_HOME/lib64"
	echo "## gcc: $(gcc --version | head -n1)"
	echo "## make: $(command -v make || echo none)"
	echo "## python3: $(python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -n1)"
	echo "## bundle manifest:"
	cat "$bundle/MANIFEST.txt"
	local sum
	sum=$(sha256sum go.mod | cut -d' ' -f1)
	echo "## go.mod sha256 here: $sum"
	grep -q "go.mod sha256: $sum" "$bundle/MANIFEST.txt" ||
		echo "WARNING: go.mod changed since the bundle was made; vendor/ may be inconsistent (rerun scripts/gpu-bundle.sh)"
}

# untar ARCHIVE DIR: extract a .tar.xz, with python's lzma if xz is missing.
untar() {
	if command -v xz >/dev/null; then
		tar -C "$2" -xJf "$1"
	else
		python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$1" "$2"
	fi
}

step_unpack() {
	local f bundle_platform
	for f in go-toolchain.tar.xz go-toolchain.id vendor.tar.xz MANIFEST.txt; do
		if [[ ! -f "$bundle/$f" ]]; then
			echo "missing $bundle/$f: make the bundle with scripts/gpu-bundle.sh and carry .gpu-bundle"
			return 1
		fi
	done
	read -r _ bundle_platform <"$bundle/go-toolchain.id"
	if [[ "$bundle_platform" != "$host_platform" ]]; then
		echo "the bundled Go toolchain is for $bundle_platform, this host is $host_platform"
		return 1
	fi
	mkdir -p "$work"
	rm -rf "$work/go"
	untar "$bundle/go-toolchain.tar.xz" "$work"
	# vendor/ must sit at the module root for -mod=vendor.
	rm -rf "$repo_root/vendor"
	untar "$bundle/vendor.tar.xz" "$repo_root"
	"$work/go/bin/go" version
}

# step_seeds RESULTS: every seed with each engine and with PyTorch, default
# flags otherwise, then the table. A failed run shows as "failed" there.
step_seeds() {
	# PyTorch's best configuration, its whole step captured as a CUDA graph
	# with fused Adam (torch_mnist.py --mode graph), a few seconds a run
	# where eager takes twenty; eager runs once in the torch step. Should a
	# capture fail, the next configuration of torch_fallbacks serves for
	# that seed and the rest.
	local dir=$1/seeds seed engine config torch_configs=$torch_fallbacks
	mkdir -p "$dir"
	for seed in ${SEEDS-1 2 3 4 5}; do
		for engine in $engines; do
			if resumed "$dir/seed-$engine-$seed.log"; then
				continue
			fi
			# Seed 1 with the default flags is what train-ENGINE ran: its
			# log serves, if that run finished.
			if [[ $seed == 1 ]] && evaluated "$1/train-$engine.log"; then
				echo "--- seed 1, $engine: the train-$engine run"
				cp "$1/train-$engine.log" "$dir/seed-$engine-1.log"
				continue
			fi
			echo "--- seed $seed, $engine"
			bin/train-cuda -log-format json -engine "$engine" -seed "$seed" -data-dir "$bundle/mnist" \
				>"$dir/seed-$engine-$seed.log" 2>&1 || tail -n 3 "$dir/seed-$engine-$seed.log"
		done
		[[ -f scripts/torch_mnist.py && -z "${SKIP_TORCH:-}" ]] || continue
		# (Any configuration: a resumed call starts with graph again, even
		# where an earlier one fell back.)
		for config in $torch_fallbacks; do
			resumed "$dir/seed-torch_$config-$seed.log" && continue 2
		done
		for config in $torch_configs; do
			seed_torch "$dir" "$seed" "$config" && break
			torch_configs=${torch_configs#*"$config"}
		done
	done
	seeds_table "$1"
}

# evaluated LOG: LOG holds the evaluation line a finished run ends with
# (ours: "msg":"evaluation"; torch_mnist.py: "msg": "evaluation"). A run
# cut short by its time limit evaluates too, but says "interrupted":true:
# that is not a result.
evaluated() {
	# Not grep -q at the end: it may stop reading early, and the first
	# grep's SIGPIPE would fail the pipeline (pipefail).
	grep -E '"msg": ?"evaluation"' "$1" 2>/dev/null | grep -vE '"interrupted": ?true' >/dev/null
}

# resumed LOG: with RESUME set, a run whose LOG says it finished in an
# earlier call is not run again.
resumed() {
	[[ -n "${RESUME:-}" ]] && evaluated "$1" && echo "--- $(basename "$1" .log): finished in an earlier call"
}

# The PyTorch configurations, by the names their logs carry
# (seed-torch_CONFIG-N.log, batch-torch_CONFIG-SIZE.log), and the
# torch_mnist.py flags of each: graph and compile use fused Adam.
torch_flags() {
	case $1 in
	eager | graph | compile) echo "--mode $1" ;;
	graph_foreach) echo "--mode graph --adam default" ;;
	*) return 1 ;;
	esac
}
# The captured PyTorch configurations, fastest first: the first whose
# capture works serves, in the timed runs (torch-CONFIG) and in the seeds
# step, which falls back to eager after them.
torch_captures="graph graph_foreach"
torch_fallbacks="$torch_captures eager"

# seed_torch DIR SEED CONFIG: one PyTorch run of the seeds step.
seed_torch() {
	echo "--- seed $2, torch $3"
	# shellcheck disable=SC2046 # torch_flags is a list of flags
	python3 scripts/torch_mnist.py --device cuda $(torch_flags "$3") --seed "$2" --data-dir "$bundle/mnist" --json \
		>"$1/seed-torch_$3-$2.log" 2>&1 || {
		tail -n 3 "$1/seed-torch_$3-$2.log"
		return 1
	}
}

# seeds_table RESULTS, batches_table RESULTS: the tables of whatever runs
# have logs (a run that never finished shows as failed). main makes them
# again after the step, so that a step cut off by its time limit still
# leaves the runs it did finish.
seeds_table() {
	python3 scripts/gpu_seeds_table.py "$1/seeds" | tee "$1/seeds.md"
}
speed_table() {
	python3 scripts/gpu_seeds_table.py --runs "$1" | tee "$1/speed.md"
}
batches_table() {
	python3 scripts/gpu_seeds_table.py --batches "$1/batches" | tee "$1/batches.md"
}

# step_batches RESULTS: one epoch at each batch size with each engine and
# with PyTorch eager and graph-captured, then torch.compile at 32 (only
# there: compiling takes long), then the samples/s table.
step_batches() {
	local dir=$1/batches bs engine mode
	mkdir -p "$dir"
	for bs in ${BATCHES-32 256 1024}; do
		for engine in $engines; do
			resumed "$dir/batch-$engine-$bs.log" && continue
			echo "--- batch $bs, $engine"
			bin/train-cuda -log-format json -engine "$engine" -epochs 1 -batch-size "$bs" -data-dir "$bundle/mnist" \
				>"$dir/batch-$engine-$bs.log" 2>&1 || tail -n 3 "$dir/batch-$engine-$bs.log"
		done
		[[ -f scripts/torch_mnist.py && -z "${SKIP_TORCH:-}" ]] || continue
		for mode in eager graph; do
			batch_torch "$dir" "$bs" "$mode"
		done
	done
	# At 32 only: the graph with torch's default Adam, to show what fused
	# Adam gives, and torch.compile last, once: compiling takes longer than
	# all the rest of a batch size's runs, and a step cut short keeps what
	# ran before it.
	if [[ -f scripts/torch_mnist.py && -z "${SKIP_TORCH:-}" && " ${BATCHES-32 256 1024} " == *" 32 "* ]]; then
		batch_torch "$dir" 32 graph_foreach
		batch_torch "$dir" 32 compile
	fi
	batches_table "$1"
}

# batch_torch DIR SIZE CONFIG: one PyTorch run of the batches step.
batch_torch() {
	local log=$1/batch-torch_$3-$2.log
	resumed "$log" && return
	echo "--- batch $2, torch $3"
	# shellcheck disable=SC2046 # torch_flags is a list of flags
	python3 scripts/torch_mnist.py --device cuda $(torch_flags "$3") --epochs 1 --batch-size "$2" \
		--data-dir "$bundle/mnist" --json >"$log" 2>&1 || tail -n 3 "$log"
}

# step_sanitize: the GPU tests of the steps that run their own way (the
# captured graphs, the persistent kernel and its barrier) under each of
# compute-sanitizer's tools: out-of-bounds and misaligned accesses, races
# on shared memory, barriers not reached by the whole block.
step_sanitize() {
	local san=$CUDA_HOME/bin/compute-sanitizer tool rc=0 test_bin=$work/tests/gpu.test
	if [[ ! -x "$san" ]]; then
		echo "no $san: nothing to run"
		return 0
	fi
	# The build-tests step's binary; built here only if that step failed.
	[[ -x "$test_bin" ]] || bash scripts/build-cuda.sh go test -c -o "$test_bin" ./gpu/
	for tool in memcheck racecheck synccheck; do
		echo "--- $tool"
		"$san" --tool "$tool" --error-exitcode 1 "$test_bin" -test.short \
			-test.run '^(TestCapturedStepMatchesReference|TestCapturedStepsMatchReferenceUpdates|TestPersistentBarrierCounts)$' || rc=1
	done
	return $rc
}

if [[ "${1:-}" == --step ]]; then
	if [[ $# -eq 3 && "$2" =~ ^(seeds|batches)$ ]]; then
		"step_$2" "$3"
		exit
	fi
	[[ $# -eq 2 && "$2" =~ ^(host|unpack|sanitize)$ ]] || {
		echo "gpu-host-run: unknown step '${2:-}'" >&2
		exit 2
	}
	"step_$2"
	exit
fi

# --- main ---------------------------------------------------------------------

[[ $# -eq 1 ]] || {
	echo "usage: $0 RESULTS_DIR" >&2
	exit 2
}
cd "$caller_dir"
mkdir -p "$1"
results=$(cd "$1" && pwd)
cd "$repo_root"
budget=${BUDGET_S:-540}
go_test_flags=${GO_TEST_FLAGS:--short}
deadline=$(($(date +%s) + budget))
min_step_s=30
summary=$results/summary.txt
# Without RESUME, nothing an earlier call left is this call's: the summary
# shows every train-*.log and table there, and the speed table reads every
# torch*.log (a torch-graph_foreach.log from a call whose fused capture
# failed, say), so a step this call skips (SKIP_TRAIN, SEEDS="", the budget
# spent) would show an earlier call's result. (Only the kinds of file the
# steps write: RESULTS_DIR may hold other files too.)
if [[ -z "${RESUME:-}" ]]; then
	rm -f "$results"/*.log "$results"/{speed,seeds,batches}.md "$results"/placement.txt "$summary" \
		"$results"/seeds/seed-*.log "$results"/batches/batch-*.log "$results"/.*.record
fi

steps=()

# record NAME STATUS SECONDS: remember a step's outcome for the summary,
# and pack what there is so far. A step run in the background (run_beside)
# leaves its line in its record file instead, for wait_beside to take.
record() {
	local line
	# (Wide enough for the longest name, torch-graph_foreach, and status,
	# FAIL(lost), so that the columns line up.)
	line=$(printf '%-19s %-10s %5ss  %s' "$1" "$2" "$3" "$results/$1.log")
	if [[ -n "${beside_record:-}" ]]; then
		printf '%s\n' "$line" >"$beside_record.part" && mv -f "$beside_record.part" "$beside_record"
		return
	fi
	steps+=("$line")
	pack_results
}

# run_beside NAME COMMAND...: start COMMAND, a run_step for step NAME (or a
# function that makes one), in the background, its output only in the
# step's log; wait_beside waits for every step so started. (A subshell
# does not inherit the EXIT trap, so finish runs once, here.)
beside=()
run_beside() {
	local name=$1
	shift
	beside+=("$name")
	rm -f "$results/.$name.record"
	(
		beside_record=$results/.$name.record
		"$@" || true
	) >/dev/null 2>&1 &
}

# wait_beside: as each step started by run_beside ends, record it (in the
# order they end) and say so; a step that ended without a record (killed)
# is a failure.
wait_beside() {
	local name running pending
	echo "=== together: ${beside[*]} (their output is in their logs)"
	while ((${#beside[@]} > 0)); do
		# Which were running before looking for records: one that ended
		# after this has left its record by then, or never will.
		running=$(jobs -rp)
		pending=()
		for name in "${beside[@]}"; do
			if [[ -f "$results/.$name.record" ]]; then
				steps+=("$(<"$results/.$name.record")")
				rm -f "$results/.$name.record"
				echo "${steps[-1]}"
				pack_results
			else
				pending+=("$name")
			fi
		done
		beside=(${pending[@]+"${pending[@]}"})
		if ((${#beside[@]} > 0)) && [[ -z "$running" ]]; then
			for name in "${beside[@]}"; do
				echo "=== $name: ended without recording its outcome" | tee -a "$results/$name.log"
				record "$name" "FAIL(lost)" 0
			done
			beside=()
		fi
		((${#beside[@]} == 0)) || sleep 1
	done
	wait || true
}

# pack_results: with PACK_TO set, summary.txt and results.tgz there as things
# stand, after every step and at the end, so that a runner that kills this
# script before its budget is spent (a device time limit shorter than
# BUDGET_S, SIGKILL: no EXIT trap) still brings back every step that ended.
# Each file is written beside its place and renamed into it, so a kill
# mid-write leaves the previous one.
pack_results() {
	[[ -n "${PACK_TO:-}" ]] || return 0
	write_summary
	{
		mkdir -p "$PACK_TO" &&
			cp "$summary" "$PACK_TO/summary.txt.part" &&
			mv -f "$PACK_TO/summary.txt.part" "$PACK_TO/summary.txt" &&
			pack_tar "$PACK_TO/results.tgz.part" &&
			mv -f "$PACK_TO/results.tgz.part" "$PACK_TO/results.tgz"
	} || echo "gpu-host-run: could not pack the results into $PACK_TO" >&2
}

# pack_tar FILE: RESULTS_DIR as a .tgz. GNU tar's status 1 only says that
# a file changed while it was read, as the logs of steps running together
# do: the archive holds what they had written, and is kept.
pack_tar() {
	local rc=0 err
	err=$(tar -C "$(dirname "$results")" -czf "$1" "$(basename "$results")" 2>&1) || rc=$?
	((rc <= 1)) || echo "$err" >&2
	((rc <= 1))
}

# kept_from_earlier NAME: with RESUME set, a step that finished ok in an
# earlier call keeps its log and is recorded as it was; fails otherwise.
# The set-up steps always run again: later steps need what they make (the
# toolchain, vendor/, bin/train-cuda, the test binaries).
kept_from_earlier() {
	local seconds
	[[ -n "${RESUME:-}" && ! $1 =~ ^(host|unpack|build|build-tests)$ ]] || return 1
	seconds=$(sed -nE "s/^=== $1: ok after ([0-9]+)s\$/\\1/p" "$results/$1.log" 2>/dev/null | tail -n 1) || true
	[[ -n "$seconds" ]] || return 1
	echo "=== $1: ok in an earlier call, not run again"
	record "$1" ok "$seconds"
}

# run_step NAME LIMIT_S COMMAND...: run COMMAND under `timeout` with at most
# LIMIT_S seconds (less if the overall budget is nearly spent), output to the
# terminal and RESULTS_DIR/NAME.log. Never stops the script; returns
# COMMAND's status so callers may decide.
run_step() {
	local name=$1 limit=$2 log=$results/$1.log start rc left status
	shift 2
	kept_from_earlier "$name" && return 0
	left=$((deadline - $(date +%s) - 5))
	# A step cut off within seconds of starting leaves nothing worth its
	# start-up: with under 30 s left (or under its whole limit, if that is
	# shorter) it is skipped instead.
	if ((left < (limit < min_step_s ? limit : min_step_s))); then
		# (Resuming, after what an earlier call's try left in the log.)
		echo "=== $name: skipped, under ${min_step_s}s of the ${budget}s budget left" | tee ${RESUME:+-a} "$log"
		record "$name" SKIPPED 0
		return 1
	fi
	((left < limit)) && limit=$left
	echo "=== $name (limit ${limit}s): $*" | tee "$log"
	start=$(date +%s)
	set +e
	timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
	rc=${PIPESTATUS[0]}
	set -e
	# A command cut off mid-line (a benchmark's name, say) leaves the line
	# open: the step's last line goes on a line of its own.
	if [[ -n "$(tail -c 1 "$log")" ]]; then
		echo | tee -a "$log"
	fi
	case $rc in
	0) status=ok ;;
	124 | 137) status=TIMEOUT ;;
	*) status="FAIL($rc)" ;;
	esac
	echo "=== $name: $status after $(($(date +%s) - start))s" | tee -a "$log"
	record "$name" "$status" "$(($(date +%s) - start))"
	return "$rc"
}

# vendor/ at the module root switches every plain `go build` of this tree to
# vendor mode, which the CPU build (go.mod, no replace) fails; so it only
# lives while this script runs, unless KEEP_VENDOR=1 (for follow-up commands
# on the same host: scripts/build-cuda.sh detects it and builds offline).
# Should the script stop while steps run beside each other, they build
# against vendor/: finish waits for them (each ends within its time limit)
# and records them before removing it.
finish() {
	((${#beside[@]} == 0)) || wait_beside
	write_summary
	cat "$summary"
	if [[ "${KEEP_VENDOR:-}" != 1 && -f "$repo_root/vendor/modules.txt" ]]; then
		rm -rf "$repo_root/vendor"
	fi
	pack_results
}

# write_summary: RESULTS_DIR/summary.txt from the steps so far and their logs.
write_summary() {
	{
		echo "gpu-host-run summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(hostname))"
		printf '%s\n' "${steps[@]}"
		for f in $engines; do
			f=train-$f
			if [[ -f "$results/$f.log" ]]; then
				echo
				echo "$f, last lines:"
				tail -n 4 "$results/$f.log" | sed 's/^/  /'
			fi
		done
		# The per-step benchmarks and the host's share beside them.
		if [[ -f "$results/bench-gpu.log" ]]; then
			echo
			echo "bench-gpu:"
			grep -E '^Benchmark' "$results/bench-gpu.log" | sed 's/^/  /' || true
		fi
		if [[ -f "$results/host-share.log" ]]; then
			echo
			echo "host-share (no GPU work: the host's part of each step):"
			grep -E '^\|' "$results/host-share.log" | sed 's/^/  /' || true
		fi
		for f in speed.md seeds.md batches.md; do
			if [[ -f "$results/$f" ]]; then
				echo
				cat "$results/$f"
			fi
		done
		if [[ -f "$results/torch.log" ]]; then
			echo
			echo "torch, last lines:"
			tail -n 3 "$results/torch.log" | sed 's/^/  /'
		fi
	} >"$summary"
}
trap finish EXIT

run_step host 30 bash "$self" --step host || true
if ! run_step unpack 120 bash "$self" --step unpack; then
	echo "gpu-host-run: no toolchain, nothing else can run" >&2
	exit 1
fi

# Offline, self-contained Go: the bundled toolchain, vendored modules, caches
# under the work folder, no toolchain switching, no proxy.
export PATH="$work/go/bin:$PATH"
export GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off GOFLAGS=-mod=vendor GOENV=off
export GOCACHE=$work/gocache GOPATH=$work/gopath GOMODCACHE=$work/gopath/pkg/mod
export PYTHONDONTWRITEBYTECODE=1 # no scripts/__pycache__ left in the tree
unset GOROOT
# The toolkit's libraries for the binaries `go test` builds and runs. (Never
# the stubs folder: its libcuda.so is only for linking.)
if [[ -d "$CUDA_HOME/lib64" ]]; then
	export LD_LIBRARY_PATH="$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# --- build, test, run ---------------------------------------------------------

rm -f bin/train-cuda # never run a stale binary if the build fails
if command -v make >/dev/null; then
	run_step build 300 make build-cuda || true
else
	run_step build 300 bash scripts/build-cuda.sh || true
fi

# The test binaries, compiled now so that the timed benchmarks and the
# tests that run together do not compile (a relink at most). The folder
# starts empty: GPU_WORK_DIR outlives a call, and `go test -c` whose
# compilation fails leaves the earlier binary in place, which the sanitize
# step would then run.
if [[ -z "${SKIP_TESTS:-}" ]]; then
	rm -rf "$work/tests"
	mkdir -p "$work/tests"
	run_step build-tests 240 bash scripts/build-cuda.sh go test -c -o "$work/tests/" ./gpu/ ./cmd/train/ || true
fi

run_step nvidia-smi 30 nvidia-smi || true

# On this host a missing GPU is a failure, not a skip. The placement test
# writes Gorgonia's listing of the compiled training program there.
export MNIST_REQUIRE_GPU=1 MNIST_PLACEMENT_OUT=$results/placement.txt

# --- timed: one step at a time, nothing else on the GPU ----------------------

# Every engine trains the real thing with the default flags, as users do
# (`make train-cuda`, which only relinks here), in the order of $engines.
train_all() {
	local engine config
	for engine in $engines; do
		if [[ -x bin/train-cuda ]] && command -v make >/dev/null; then
			run_step "train-$engine" "$1" \
				make --no-print-directory train-cuda DATA_DIR="$bundle/mnist" TRAIN_FLAGS="-log-format json -engine $engine" || true
		elif [[ -x bin/train-cuda ]]; then
			run_step "train-$engine" "$1" \
				bin/train-cuda -log-format json -engine "$engine" -data-dir "$bundle/mnist" || true
		elif ! kept_from_earlier "train-$engine"; then
			echo "=== train-$engine: skipped, bin/train-cuda was not built" | tee "$results/train-$engine.log"
			record "train-$engine" SKIPPED 0
		fi
		# PyTorch eager, and its whole step captured as a CUDA graph (with
		# torch's default Adam where the fused one will not capture), with
		# the same flags: the references of the speed table.
		if [[ $engine == native && -f scripts/torch_mnist.py && -z "${SKIP_TORCH:-}" ]]; then
			run_step torch 90 python3 scripts/torch_mnist.py --device cuda --data-dir "$bundle/mnist" --json || true
			for config in $torch_captures; do
				# shellcheck disable=SC2046 # torch_flags is a list of flags
				if run_step "torch-$config" 90 python3 scripts/torch_mnist.py --device cuda $(torch_flags "$config") \
					--data-dir "$bundle/mnist" --json; then
					break
				fi
			done
		fi
	done
}
if [[ -z "${SKIP_TRAIN:-}" ]]; then
	train_all "${TRAIN_LIMIT_S:-200}"
	speed_table "$results" >/dev/null 2>&1 || true
	if [[ -n "${BATCHES-32 256 1024}" && -x bin/train-cuda ]]; then
		if ! run_step batches 150 bash "$self" --step batches "$results"; then
			batches_table "$results" >/dev/null 2>&1 || true
		fi
	fi
fi

if [[ -z "${SKIP_TESTS:-}" ]]; then
	# Per-step time of each engine through DeviceLoop and through Step.
	run_step bench-gpu 60 bash scripts/build-cuda.sh go test -run '^$' -bench 'EngineStepAt|NativeStep|StepParts|PersistentParts' -benchtime 3000x ./gpu/ || true
	# The same steps against nullcuda, a driver that does no GPU work, on
	# this host's CPU: the host's share of each step, to set beside bench-gpu.
	run_step host-share 40 bash scripts/host-overhead.sh 3 || true
fi

# --- untimed, together: only their results count -----------------------------

# seeds_step: the seeds step, and its table of the runs it finished should
# its time limit cut it off.
seeds_step() {
	run_step seeds 200 bash "$self" --step seeds "$results" || {
		seeds_table "$results" >/dev/null 2>&1 || true
		return 1
	}
}
if [[ -z "${SKIP_TESTS:-}" ]]; then
	# test-cli's tests read MNIST from the default data folder
	# (os.UserCacheDir), here one filled from the bundle; filled before any
	# step starts beside the others, so that a failure here stops the
	# script with nothing running in the background.
	test_cache=$work/cache
	mkdir -p "$test_cache/mnist-gorgonia"
	cp "$bundle"/mnist/*.gz "$test_cache/mnist-gorgonia/"
	# shellcheck disable=SC2086 # GO_TEST_FLAGS is a list of flags
	run_beside test-gpu run_step test-gpu 180 bash scripts/build-cuda.sh go test -count=1 -v $go_test_flags ./gpu/
fi
if [[ -z "${SKIP_TRAIN:-}" && -n "${SEEDS-1 2 3 4 5}" && -x bin/train-cuda ]]; then
	run_beside seeds seeds_step
fi
if [[ -z "${SKIP_TESTS:-}" ]]; then
	# The trainer's own tests against the cuda build: build-cuda.sh's
	# GOFLAGS reach the `go build` in cmd/train's TestMain, so every run in
	# them trains on the GPU, with the default engine (Gorgonia's; the
	# native engine is covered by test-gpu and train-native). data/ and
	# model/kernels/ know nothing of CUDA and run as on any machine. The
	# tests read MNIST from $test_cache.
	run_beside test-cli run_step test-cli 160 env XDG_CACHE_HOME="$test_cache" \
		bash scripts/build-cuda.sh go test -count=1 -short -timeout 140s ./cmd/train/ ./data/... ./model/kernels/
	# The sanitizer: what the tests would not find (out-of-bounds and
	# misaligned accesses, races on shared memory, barriers not reached).
	run_beside sanitize run_step sanitize 150 bash "$self" --step sanitize
fi
((${#beside[@]} == 0)) || wait_beside

# model/'s own tests are CPU tests: they build graphs without gpu.Open, so
# under the cuda tag they would run on a GPU nobody set up. The GPU checks of
# the model live in gpu/ (test-gpu).

for s in "${steps[@]}"; do
	[[ "$s" == *" ok "* ]] || exit 1
done
exit 0
