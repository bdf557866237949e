# deps-tools.sh - sourced by cuda-deps.sh and cpu-deps.sh, which adapt copies
# of Gorgonia's modules at build time. The caller sets repo_root (the
# repository), work (the scratch folder the copies go to) and die.

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
