#!/usr/bin/env bash
# host-overhead.sh - what one training step of each GPU engine costs the
# host, measured on any machine with the CUDA toolkit's headers, GPU or not
# (make bench-cuda-host).
#
# Usage: scripts/host-overhead.sh [COUNT]   (default COUNT 5 runs per engine)
#
# It builds the null flavour of scripts/nullcuda (a CUDA driver and cuBLAS
# that do no GPU work: device memory is host memory, launches and GEMMs
# return at once) into build/nullcuda/null/, and runs the
# cuda build's BenchmarkEngineStepAt (gpu/) against them: 20,000 training
# steps at batch 32 through DeviceLoop, as the trainer drives them. The time
# per step is then the host's alone (Go, Gorgonia's tape machine, cgo),
# less what a real driver spends inside each call; the driver calls a step
# makes are counted. On a GPU this share runs alongside the GPU's work, so
# it is the floor for a step whenever the host is the slower of the two.
#
# It fails if a step of the native engine (or of the gorgonia engine with
# its steps not captured: gorgonia-uncaptured) copies anything between host
# and device or waits for the device, if a gorgonia, cudagraph or fused
# step is not one graph launch, or if persistent steps are not many to a
# launch: those are properties of the code, not
# of the machine, so they hold here as on a GPU.
#
# The table gives medians over COUNT runs and each engine's time as a ratio
# to the native engine's in the same runs: this machine's speed and load
# move the microseconds, the ratios much less.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
count=${1:-5}
[[ "$count" =~ ^[1-9][0-9]*$ ]] || {
	echo "usage: $0 [COUNT]" >&2
	exit 2
}

die() {
	echo "host-overhead: $*" >&2
	exit 1
}

# The cuda setup (CUDA_HOME, cgo flags, -tags cuda -modfile go.cuda.mod).
eval "$(bash scripts/build-cuda.sh env)"

lib_dir=$repo_root/build/nullcuda/null
bash scripts/nullcuda/build.sh null "$lib_dir"

counts=$(mktemp)
out=$(mktemp)
trap 'rm -f "$counts" "$out"' EXIT
echo "host-overhead: BenchmarkEngineStepAt against nullcuda, $count runs of 20000 steps per engine"
# Each engine, and the Gorgonia engine uncaptured; not the variants that
# work Adam's step size out in every thread (ENGINE-rates-worked-out), which
# differ from their engine only on the GPU.
LD_LIBRARY_PATH=$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} NULLCUDA_COUNTS=$counts \
	go test -run '^$' -bench '^BenchmarkEngineStepAt$/^[a-z]+(-uncaptured)?$' -benchtime 20000x -count "$count" ./gpu/ | tee "$out"

# One line per run: BenchmarkEngineStepAt/ENGINE-P  N  T ns/op  V1 NAME1/op ...
awk -v count="$count" '
	$1 ~ /^BenchmarkEngineStepAt\// {
		engine = $1; sub(/^BenchmarkEngineStepAt\//, "", engine); sub(/-[0-9]+$/, "", engine)
		if (!(engine in runs)) order[++engines] = engine
		n = ++runs[engine]
		ns[engine, n] = $3
		for (i = 5; i < NF; i += 2) { name = $(i + 1); sub(/\/op$/, "", name); calls[engine, name] = $i }
	}
	function median(engine,   n, i, j, v, t) {
		n = runs[engine]
		for (i = 1; i <= n; i++) v[i] = ns[engine, i]
		for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	END {
		if (engines == 0) { print "host-overhead: the benchmark printed no results" > "/dev/stderr"; exit 1 }
		native = ("native" in runs) ? median("native") : 0
		printf "\n| engine | host us / step | vs native | kernel launches | GEMMs | graph launches | copies up | copies down | syncs |\n"
		printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
		bad = 0
		for (k = 1; k <= engines; k++) {
			e = order[k]; m = median(e)
			printf "| %s | %.1f | %s | %g | %g | %g | %g | %g | %g |\n", e, m / 1000,
				native ? sprintf("%.2f", m / native) : "-",
				calls[e, "launches"], calls[e, "gemms"], calls[e, "graph-launches"],
				calls[e, "copies-up"], calls[e, "copies-down"], calls[e, "syncs"]
			if (runs[e] != count) { printf "host-overhead: %s ran %d times, not %d\n", e, runs[e], count > "/dev/stderr"; bad = 1 }
			captured = e == "gorgonia" || e == "cudagraph" || e == "fused"
			if (!captured && calls[e, "copies-up"] + calls[e, "copies-down"] + calls[e, "syncs"] > 0) {
				printf "host-overhead: a %s step copies or waits for the device\n", e > "/dev/stderr"; bad = 1
			}
			if (captured && (calls[e, "graph-launches"] != 1 || calls[e, "launches"] > 0.01)) {
				printf "host-overhead: a %s step is not one graph launch\n", e > "/dev/stderr"; bad = 1
			}
			if (e == "persistent" && calls[e, "launches"] > 1 / 16) {
				printf "host-overhead: persistent steps are not many to a launch\n" > "/dev/stderr"; bad = 1
			}
		}
		print "\nCalls are per step, from the last run. The gorgonia, cudagraph and fused engines copy and wait, and the persistent engine launches, when a step does not follow the last one: the benchmark wraps round its 32 batches, the trainer never does within an epoch."
		exit bad
	}' "$out"
