# deps-tools.sh - sourced by cuda-deps.sh and cpu-deps.sh, which adapt copies
# of Gorgonia's modules at build time. The caller sets repo_root (the
# repository), go_mod (its go.mod), out_dir (where the mod file goes), work
# (the scratch folder the copies go to, before copy_module) and die.

# check_go_mod MODULE VERSION: go.mod must require exactly that version (the
# rewrites are written for it) and must not replace MODULE itself (ours
# would be a second replace).
check_go_mod() {
	local module=$1 version=$2 re
	re=${module//./\\.}
	grep -Eq "^[[:space:]]*$re ${version//./\\.}([[:space:]]|$)" "$go_mod" ||
		die "go.mod does not require $module $version; the adaptation in scripts/$(basename "$0") is written for that version"
	if grep -Eq "^[[:space:]]*replace[[:space:]].*$re([[:space:]]|$)|^[[:space:]]*$re[[:space:]]*(v[^[:space:]]*)?[[:space:]]*=>" "$go_mod"; then
		die "go.mod already replaces $module; refusing to add a second replace"
	fi
}

# write_modfile NAME WHY REPLACE...: out_dir/go.NAME.mod is go.mod plus a
# comment saying WHY and one replace line per REPLACE ("module => folder");
# out_dir/go.NAME.sum is go.sum (the replaced modules are folders, which need
# no checksum). The mod file is swapped in whole.
write_modfile() {
	local name=$1 why=$2 tmp r
	shift 2
	tmp=$(mktemp "$out_dir/.go.$name.mod.XXXXXX")
	{
		cat "$go_mod"
		printf '\n// Added by scripts/%s: %s.\n' "$(basename "$0")" "$why"
		for r in "$@"; do
			printf 'replace %s\n' "$r"
		done
	} >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$out_dir/go.$name.mod"
	install -m 0644 "$repo_root/go.sum" "$out_dir/go.$name.sum"
}

# copy_module MODULE VERSION NAME: copy MODULE@VERSION from the module cache
# to $work/NAME, without upstream's tests.
copy_module() {
	local module=$1 version=$2 dst=$work/$3 src
	# `go mod download` verifies the module against go.sum before we copy it.
	# Run from the repository root so go.mod/go.sum are the ones consulted,
	# and with -mod=mod so a GOFLAGS=-mod=vendor environment cannot get in
	# the way.
	src=$(cd "$repo_root" && GOFLAGS=-mod=mod go mod download -json "$module@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -n "$src" && -f "$src/go.mod" ]] ||
		die "could not locate $module@$version in the module cache (is the Go module proxy reachable?)"
	cp -R "$src" "$dst"
	# Module cache files are read-only; normalise modes so the tree is
	# editable, deletable and hashes the same whatever umask the copy ran
	# under.
	chmod -R u+w "$dst"
	find "$dst" -type d -exec chmod 0755 {} +
	find "$dst" -type f -exec chmod 0644 {} +
	find "$dst" -name '*_test.go' -delete
}

# rewrite FILE FROM TO COUNT: replace the literal FROM by TO in $work/FILE and
# check it occurred exactly COUNT times, so an unexpected upstream file fails
# loudly. FROM and TO may span lines; perl reads the whole file (-0777) and
# treats FROM literally (\Q...\E).
rewrite() {
	local file=$work/$1 from=$2 to=$3 want=$4 got
	got=$(FROM=$from perl -0777 -ne 'print scalar(() = /\Q$ENV{FROM}\E/g)' "$file")
	[[ "$got" -eq "$want" ]] ||
		die "$1: expected $want occurrence(s) of '$from', found $got"
	FROM=$from TO=$to perl -0777 -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$file"
}

# append_run_all_here FILE: append to $work/FILE (a copy's vm_tape.go) the
# runAllHere method that the copy's RunAll calls when nothing in the program
# needs RunAll's thread hand-over: with no device (cpu-deps.sh), or with
# only ops that launch their own device work (cuda-deps.sh). Upstream's
# RunAll locks the calling goroutine to its thread and runs the program on
# a second goroutine, waiting in a select to flush batched device calls on
# the locked thread; every run then pays two hand-overs between threads,
# each a futex wake-up.
append_run_all_here() {
	cat >>"$work/$1" <<'GO'

// runAllHere is RunAll on the calling goroutine, added by the mnist
// project's scripts/cpu-deps.sh and scripts/cuda-deps.sh for programs that
// need no flushing of batched device calls: no thread lock, no second
// goroutine, so a run costs no hand-over between threads. What runall
// reports, and the closures after it, are as in RunAll.
func (m *tapeMachine) runAllHere() error {
	errChan := make(chan error, 1)
	doneChan := make(chan struct{}, 1)
	m.runall(errChan, doneChan)
	select {
	case err := <-errChan:
		return err
	default:
	}
	if err := m.ExternMetadata.DoWork(); err != nil {
		return err
	}
	for _, closure := range m.closureQueue {
		if err := closure(); err != nil {
			return err
		}
	}
	return nil
}
GO
}
