# ptx-tools.sh - sourced by gen-ptx.sh and gen-kernels.sh: finds the tools
# both need and sets nvcc, nvcc_release and gofmt, or calls the caller's
# die. nvcc comes from $NVCC, else $CUDA_HOME/bin, else PATH.

if [[ -n "${NVCC:-}" ]]; then
	nvcc=$NVCC
elif [[ -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then
	nvcc=$CUDA_HOME/bin/nvcc
else
	nvcc=$(command -v nvcc) || die "nvcc not found: set CUDA_HOME or NVCC, or put nvcc on PATH"
fi
nvcc_release=$("$nvcc" --version | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p')
[[ -n "$nvcc_release" ]] || die "cannot tell the release of $nvcc"

# gofmt normally sits next to go; `go generate` and `go test` put
# GOROOT/bin on PATH.
gofmt=$(command -v gofmt || true)
if [[ -z "$gofmt" ]] && command -v go >/dev/null; then
	gofmt="$(go env GOROOT)/bin/gofmt"
fi
[[ -x "$gofmt" ]] || die "gofmt not found: put Go's bin folder on PATH"
