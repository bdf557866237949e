#!/usr/bin/env bash
# Runs every fuzzer of the module, one after another, and prints a table of
# what each did. The fuzzers are found at run time: every `func FuzzX` in a
# _test.go file, so a new one is fuzzed without editing this script.
#
#   scripts/fuzz.sh                      # each fuzzer for FUZZTIME (1m)
#   FUZZTIME=10m PARALLEL=1 scripts/fuzz.sh
#   FUZZ='Safetensors|Checkpoint' scripts/fuzz.sh   # only fuzzers matching
#
# Settings (environment, as for make's FUZZTIME):
#   FUZZTIME  -fuzztime of each fuzzer: a duration (90s) or a count (10000x)
#   PARALLEL  -parallel: fuzzing processes per fuzzer (default: Go's, one a core)
#   MINIMIZE  -fuzzminimizetime (default 100x). Go minimizes every input that
#             finds new coverage, and its last pass is quadratic in the
#             input's length: at Go's default of 60s a fuzzer whose inputs are
#             a few hundred bytes spends most of its time minimizing.
#   FUZZ      an extended regexp; only fuzzers whose name matches run
#
# Exit status: 0 when no fuzzer found a failing input, 1 when one did (its
# input is in the package's testdata/fuzz/FuzzX/, as go test reports), 130
# when interrupted. Go's fuzzing engine sometimes stops at the deadline with
# "context deadline exceeded" on a loaded machine although nothing failed;
# that, with no new file under testdata/fuzz, counts as a pass ("deadline"
# in the table).
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-1m}
PARALLEL=${PARALLEL:-}
MINIMIZE=${MINIMIZE:-100x}
FUZZ=${FUZZ:-}
GO=${GO:-go}

# "dir name" lines, one per fuzzer, in a stable order. Files with a build
# constraint (the cuda build's) are left out: a plain go test cannot run them.
fuzzers() {
	grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' \
		--exclude-dir=.git --exclude-dir=vendor --exclude-dir=.gpu-bundle --exclude-dir=.cuda-deps . |
		sort | while read -r file; do
			if grep -q '^//go:build' "$file"; then
				echo "fuzz.sh: skipping $file (build constraint)" >&2
				continue
			fi
			grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' |
				while read -r name; do echo "$(dirname "$file") $name"; done
		done
}

rows=()
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

table() {
	printf '\n%-26s %-17s %8s %12s %9s %6s %7s  %s\n' fuzzer package seconds execs "execs/s" new corpus result
	local total=0 r
	for r in "${rows[@]}"; do
		# shellcheck disable=SC2086
		set -- $r
		printf '%-26s %-17s %8s %12s %9s %6s %7s  %s\n' "$@"
		[ "$4" != - ] && total=$((total + $4))
	done
	printf '%-26s %-17s %8s %12s\n' total "" "" "$total"
}

trap 'echo "fuzz.sh: interrupted" >&2; table; exit 130' INT TERM

list=$(fuzzers)
if [ -z "$list" ]; then
	echo "fuzz.sh: no fuzzers found" >&2
	exit 1
fi
while read -r dir name; do
	if [ -n "$FUZZ" ] && ! [[ $name =~ $FUZZ ]]; then
		continue
	fi
	corpus="$dir/testdata/fuzz/$name"
	before=$(ls "$corpus" 2>/dev/null | sort)
	args=(-run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$MINIMIZE")
	[ -n "$PARALLEL" ] && args+=(-parallel="$PARALLEL")
	echo "== $name ($dir) for $FUZZTIME"
	start=$(date +%s)
	"$GO" test "${args[@]}" "$dir" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	seconds=$(($(date +%s) - start))
	after=$(ls "$corpus" 2>/dev/null | sort)
	new=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)

	# The engine's last progress line:
	# fuzz: elapsed: 1m0s, execs: 123 (2/sec), new interesting: 4 (total: 9)
	last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	interesting=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	total=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")
	# The rate over the engine's own elapsed time (1h2m3s), which leaves out
	# building the test binary.
	elapsed=$(sed -nE 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")
	rate=$(awk -v e="${execs:-0}" -v d="${elapsed:-0s}" 'BEGIN {
		s = 0
		while (match(d, /^[0-9.]+[hms]/)) {
			n = substr(d, 1, RLENGTH - 1); u = substr(d, RLENGTH, 1)
			s += n * (u == "h" ? 3600 : u == "m" ? 60 : 1)
			d = substr(d, RLENGTH + 1)
		}
		printf "%d", (s > 0 ? e / s : 0)
	}')

	if [ "$rc" -eq 0 ]; then
		result=ok
	elif [ -z "$new" ] && ! grep -q 'Failing input written to' "$log" && grep -q 'context deadline exceeded' "$log"; then
		result=deadline
	else
		result=FAILED
		failed=1
		[ -n "$new" ] && echo "fuzz.sh: $name: new failing input(s) in $corpus: $new" >&2
	fi
	# A run too short for a progress line (FUZZTIME=50x) reports nothing.
	[ -z "$execs" ] && rate=-
	rows+=("$name ${dir#./} $seconds ${execs:--} $rate ${interesting:--} ${total:--} $result")
done <<<"$list"

table
exit "$failed"
