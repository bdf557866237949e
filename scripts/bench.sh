#!/usr/bin/env bash
# Benchmark our Gorgonia MNIST trainer (cmd/train) against the PyTorch reference
# (scripts/torch_mnist.py) on this machine's CPU. `make bench` runs it.
#
# Usage: scripts/bench.sh            (from anywhere; works in the repository root)
#
# It builds bin/train, then sweeps batch sizes (by default 5 epochs at batch 32, 1 epoch
# at 256, 1 at 2048). Each round runs, for every batch size, ours then PyTorch (A B A B
# ...), then ours again with GOMAXPROCS=1 and =2, each under /usr/bin/time -v for the
# peak RSS. It prints two markdown tables of the medians: the sweep (training seconds,
# ours/PyTorch) and, for the first batch size, the detail (train time, s/epoch,
# samples/s, peak RSS, test accuracy, test loss).
# Our figures come from the JSON "evaluation" log entry of `bin/train -log-format json`;
# PyTorch's from the matching JSON line of `torch_mnist.py --json`.
# Raw results go to $BENCH_OUT/bench-results.json, run logs to $BENCH_OUT/bench-runs/.
#
# Environment:
#   BENCH_RUNS    rounds: runs of each implementation at each batch size (default 3)
#   BENCH_SWEEP   batch:epochs pairs, space-separated (default "32:$BENCH_EPOCHS 256:1 2048:1")
#   BENCH_EPOCHS  epochs of the batch-32 entry of the default sweep (default 5)
#   BENCH_PROCS   GOMAXPROCS values to run ours with as well (default "1 2"; "" for none)
#   TRAIN_FLAGS   extra flags for bin/train (word-split), e.g. TRAIN_FLAGS="-seed 2"
#   DATA_DIR      MNIST directory for both (default: ours' default; PyTorch reads
#                 ~/.cache/mnist-gorgonia, which ours fills on its first run)
#   BENCH_OUT     output folder (default build/)
#   TORCH_PYTHON  interpreter for the reference (default /usr/bin/python3 with Debian's
#                 python3-torch, installed via apt-get if missing, and OpenBLAS, installed
#                 if torch would otherwise run on the netlib reference BLAS)
#   TORCH_THREADS torch.set_num_threads for the reference (default 2; OPENBLAS_NUM_THREADS=1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_EPOCHS="${BENCH_EPOCHS:-5}"
BENCH_SWEEP="${BENCH_SWEEP:-32:$BENCH_EPOCHS 256:1 2048:1}"
BENCH_PROCS="${BENCH_PROCS-1 2}"
TRAIN_FLAGS="${TRAIN_FLAGS:-}"
DATA_DIR="${DATA_DIR:-}"
BENCH_OUT="${BENCH_OUT:-build}"
TORCH_PYTHON="${TORCH_PYTHON:-/usr/bin/python3}"
TORCH_THREADS="${TORCH_THREADS:-2}"
PY="$(command -v python3 || echo /usr/bin/python3)"   # for bench_table.py (stdlib only)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$BENCH_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$BENCH_RUNS')"
[[ "$BENCH_EPOCHS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_EPOCHS must be a positive integer (got '$BENCH_EPOCHS')"
read -r -a sweep <<<"$BENCH_SWEEP"
[[ ${#sweep[@]} -gt 0 ]] || die "BENCH_SWEEP is empty (want batch:epochs pairs, e.g. '32:5 256:1')"
for entry in "${sweep[@]}"; do
	[[ "$entry" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "BENCH_SWEEP entry '$entry' is not batch:epochs (e.g. 32:5)"
done
read -r -a procs <<<"$BENCH_PROCS"
for p in "${procs[@]}"; do
	[[ "$p" =~ ^[1-9][0-9]*$ ]] || die "BENCH_PROCS entry '$p' is not a positive integer"
done

as_root() {
	if [[ $(id -u) -eq 0 ]]; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
	else return 1
	fi
}
apt_updated=0
apt_install() {
	command -v apt-get >/dev/null 2>&1 || return 1
	if [[ $apt_updated -eq 0 ]]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- tools -------------------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
	log "/usr/bin/time missing; installing the 'time' package"
	apt_install time || die "could not install 'time' (apt-get install -y time); it is needed for peak RSS"
fi

torch_ok=1
if ! OPENBLAS_NUM_THREADS=1 "$TORCH_PYTHON" -c 'import torch' >/dev/null 2>&1; then
	if [[ "$TORCH_PYTHON" == /usr/bin/python3 ]]; then
		log "PyTorch missing for /usr/bin/python3; installing python3-torch libopenblas0-pthread from Debian"
		apt_install python3-torch libopenblas0-pthread || true
	fi
	if ! OPENBLAS_NUM_THREADS=1 "$TORCH_PYTHON" -c 'import torch' >/dev/null 2>&1; then
		torch_ok=0
		log "warning: PyTorch is not importable by $TORCH_PYTHON and could not be installed"
		log "warning: (try: apt-get install -y python3-torch libopenblas0-pthread); reporting our figures only"
	fi
fi

# torch_blas: the BLAS PyTorch's CPU products run on, "KIND PATH"
# (torch_mnist.py --which-blas). Debian's python3-torch takes whatever
# libblas.so.3 is installed, the slow netlib reference unless an optimised one
# is: on it PyTorch takes about 5x as long, a comparison nobody should quote.
torch_blas() {
	local blas
	blas="$(OPENBLAS_NUM_THREADS=1 "$TORCH_PYTHON" scripts/torch_mnist.py --which-blas 2>/dev/null | tail -n 1)" || true
	echo "${blas:-unknown -}"
}
torch_blas_now=unknown
if [[ $torch_ok -eq 1 ]]; then
	torch_blas_now="$(torch_blas)"
	if [[ "$torch_blas_now" == reference* && "$TORCH_PYTHON" == /usr/bin/python3 ]]; then
		log "PyTorch would run on the reference BLAS (${torch_blas_now#* }); installing libopenblas0-pthread from Debian"
		apt_install libopenblas0-pthread || true
		torch_blas_now="$(torch_blas)"
	fi
	if [[ "$torch_blas_now" == reference* ]]; then
		log "warning: PyTorch runs on the reference BLAS (${torch_blas_now#* }), several times slower than an optimised one;"
		log "warning: its figures understate PyTorch (try: apt-get install -y libopenblas0-pthread)"
	fi
fi

# --- build -------------------------------------------------------------------
[[ -f cmd/train/main.go ]] || die "cmd/train/main.go not found (nothing to benchmark yet)"
log "building bin/train ($(go version | awk '{print $3}'))"
bash scripts/cpu-deps.sh # the CPU build's adapted Gorgonia, as make build uses
go build -modfile go.cpu.mod -o bin/train ./cmd/train

# Pass a flag to our binary only if it has one by that name (stays in step with cmd/train).
help_text="$(timeout 20 bin/train -h 2>&1 || true)"
flag_style() { # prints "-name" or "--name" if bin/train -h lists it
	if grep -qE -- "^[[:space:]]+--$1([[:space:]=]|$)" <<<"$help_text"; then echo "--$1"
	elif grep -qE -- "^[[:space:]]+-$1([[:space:]=]|$)" <<<"$help_text"; then echo "-$1"
	fi
}
ours_args=()
f="$(flag_style log-format)"
[[ -n "$f" ]] || die "bin/train has no -log-format flag (needed for the JSON evaluation entry)"
ours_args+=("$f=json")
epochs_flag="$(flag_style epochs)"
batch_flag="$(flag_style batch-size)"
for entry in "${sweep[@]}"; do
	if [[ -z "$epochs_flag" && "${entry#*:}" != 5 ]]; then die "bin/train has no -epochs flag; cannot run $entry"; fi
	if [[ -z "$batch_flag" && "${entry%%:*}" != 32 ]]; then die "bin/train has no -batch-size flag; cannot run $entry"; fi
done
if [[ -n "$DATA_DIR" ]]; then
	f="$(flag_style data-dir)"
	[[ -n "$f" ]] || die "bin/train has no -data-dir flag; cannot use DATA_DIR=$DATA_DIR"
	ours_args+=("$f=$DATA_DIR")
fi
if [[ -n "$TRAIN_FLAGS" ]]; then
	read -r -a extra <<<"$TRAIN_FLAGS"
	ours_args+=("${extra[@]}")
fi
torch_args=(--device cpu --threads "$TORCH_THREADS" --json)
[[ -n "$DATA_DIR" ]] && torch_args+=(--data-dir "$DATA_DIR")

# ours_for BATCH EPOCHS: our arguments for one sweep entry
ours_for() {
	local a=("${ours_args[@]}")
	[[ -n "$epochs_flag" ]] && a+=("$epochs_flag=$2")
	[[ -n "$batch_flag" ]] && a+=("$batch_flag=$1")
	printf '%s\n' "${a[@]}"
}

# --- runs --------------------------------------------------------------------
# The machine's load average before the first run: other work on it slows both
# sides (the ratio, run alternately, suffers least).
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
runs_dir="$BENCH_OUT/bench-runs"
mkdir -p "$runs_dir"
rm -f "$runs_dir"/*.log "$runs_dir"/*.time "$runs_dir"/*.rc

# run_one NAME N CMD...: runs CMD under /usr/bin/time -v, logs to $runs_dir/NAME-N.*
# (NAME is bBATCHeEPOCHS_IMPL, which bench_table.py reads back).
run_one() {
	local name="$1" n="$2"; shift 2
	local base="$runs_dir/$name-$n" rc=0
	log "run $n/$BENCH_RUNS $name: $*"
	/usr/bin/time -v -o "$base.time" "$@" >"$base.log" 2>&1 || rc=$?
	echo "$rc" >"$base.rc"
	local line
	line="$(grep -F '"evaluation"' "$base.log" | tail -n 1 || true)"
	if [[ $rc -ne 0 || -z "$line" ]]; then
		log "$name run $n failed (exit $rc, evaluation entry: $([[ -n "$line" ]] && echo found || echo missing)); last lines of $base.log:"
		tail -n 20 "$base.log" | sed 's/^/    /' >&2
		return 1
	fi
	log "  $(grep -oE '"(train_seconds|test_loss|test_accuracy)":[^,}]*' <<<"$line" | tr '\n' ' ')$(grep -E 'Maximum resident set size' "$base.time" | sed 's/^[[:space:]]*Maximum resident set size (kbytes)/ peak RSS kB/')"
}

for ((i = 1; i <= BENCH_RUNS; i++)); do
	for entry in "${sweep[@]}"; do
		batch="${entry%%:*}" epochs="${entry#*:}" tag="b${entry%%:*}e${entry#*:}"
		mapfile -t args < <(ours_for "$batch" "$epochs")
		run_one "${tag}_ours" "$i" bin/train "${args[@]}" || die "our training failed; see $runs_dir/${tag}_ours-$i.log"
		if [[ $torch_ok -eq 1 ]]; then
			if ! run_one "${tag}_torch" "$i" env OPENBLAS_NUM_THREADS=1 "$TORCH_PYTHON" scripts/torch_mnist.py \
				"${torch_args[@]}" --epochs "$epochs" --batch-size "$batch"; then
				log "warning: the PyTorch run failed; reporting our figures only"
				torch_ok=0
			fi
		fi
		for p in "${procs[@]}"; do
			run_one "${tag}_ours-p$p" "$i" env GOMAXPROCS="$p" bin/train "${args[@]}" ||
				die "our training with GOMAXPROCS=$p failed; see $runs_dir/${tag}_ours-p$p-$i.log"
		done
	done
done

# --- report ------------------------------------------------------------------
git_rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain 2>/dev/null || true)" ]]; then git_rev+="-dirty"; fi
torch_status="$([[ $torch_ok -eq 1 ]] && echo "OPENBLAS_NUM_THREADS=1 --threads $TORCH_THREADS, BLAS ${torch_blas_now%% *}" || echo "unavailable")"
echo
"$PY" scripts/bench_table.py --runs-dir "$runs_dir" --out "$BENCH_OUT/bench-results.json" \
	--meta "sweep=$BENCH_SWEEP" --meta "runs=$BENCH_RUNS" --meta "load_before=$load_before" \
	--meta "load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)" \
	--meta "go=$(go version | awk '{print $3}')" --meta "commit=$git_rev" \
	--meta "ours_flags=${ours_args[*]}" --meta "torch=$torch_status"
echo
log "raw results: $BENCH_OUT/bench-results.json (logs in $runs_dir/)"
