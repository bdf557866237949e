#!/usr/bin/env bash
# build.sh - build a flavour of nullcuda (scripts/nullcuda/nullcuda.cc), a
# CUDA driver and cuBLAS for machines without a GPU.
#
# Usage: scripts/nullcuda/build.sh null|cpu OUTDIR
#   null  launches and GEMMs do nothing (scripts/host-overhead.sh)
#   cpu   the kernels of gpu/kernels/mlp.cu and SGEMM run on the CPU
#         (scripts/test-cuda-cpu.sh)
# Writes OUTDIR/libcuda.so.1 (the driver and cuBLAS) and OUTDIR/libcublas.so.N
# (N: the toolkit's cuBLAS major version, which the cuda binary asks for; a
# shim), for LD_LIBRARY_PATH=OUTDIR. Needs g++ (C++17; C++20 for cpu) and the CUDA toolkit's headers,
# found as scripts/build-cuda.sh finds them (CUDA_HOME).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() {
	echo "nullcuda: $*" >&2
	exit 1
}
[[ $# -eq 2 && ( $1 == null || $1 == cpu ) ]] || {
	echo "usage: $0 null|cpu OUTDIR" >&2
	exit 2
}
flavour=$1
mkdir -p "$2"
out=$(cd "$2" && pwd)

if [[ -z "${CUDA_HOME:-}" ]]; then
	eval "$(bash "$repo_root/scripts/build-cuda.sh" env | grep '^export CUDA_HOME=')"
fi
[[ -n "${CUDA_HOME:-}" ]] || die "no CUDA toolkit found (set CUDA_HOME)"
include=$CUDA_HOME/include
[[ -f "$include/cuda.h" && -f "$include/cublas_api.h" ]] || die "no CUDA headers in $include (set CUDA_HOME)"
cxx=${CXX:-g++}
command -v "$cxx" >/dev/null || die "no C++ compiler ($cxx)"

# -Wno-unknown-pragmas: the kernels' #pragma unroll is nvcc's.
flags=(-std=c++17 -O3 -fPIC -shared -Wall -Wno-unused-parameter -Wno-unknown-pragmas -ffp-contract=off -I"$include")
if [[ $flavour == cpu ]]; then
	kernels=$repo_root/gpu/kernels/mlp.cu
	# One kernel(name, syncs, name) line per extern "C" __global__ function;
	# syncs when it calls __syncthreads, itself or through the __device__
	# functions it calls (each function's text runs to the next function; a
	# call is the name then "(", or "<" for a template's).
	awk '
		/^(extern "C" )?__(global|device)__ / {
			name = $0; sub(/[ \t]*\(.*/, "", name); sub(/.*[ \t*]/, "", name)
			fns[++nfn] = name; kernel[name] = ($0 ~ /__global__/)
		}
		nfn > 0 { body[fns[nfn]] = body[fns[nfn]] "\n" $0 }
		/__syncthreads\(\)/ && nfn > 0 { syncs[fns[nfn]] = 1 }
		END {
			for (changed = 1; changed;) {
				changed = 0
				for (i = 1; i <= nfn; i++) {
					f = fns[i]
					if (syncs[f]) continue
					for (j = 1; j <= nfn; j++) {
						g = fns[j]
						if (g != f && syncs[g] && !kernel[g] && (index(body[f], g "(") || index(body[f], g "<"))) { syncs[f] = 1; changed = 1; break }
					}
				}
			}
			for (i = 1; i <= nfn; i++) {
				f = fns[i]
				if (kernel[f]) printf "kernel(\"%s\", %s, %s),\n", f, syncs[f] ? "true" : "false", f
			}
		}
	' "$kernels" >"$out/kernels.inc"
	[[ -s "$out/kernels.inc" ]] || die "no extern \"C\" __global__ kernels in $kernels"
	flags+=(-DNULLCUDA_RUN_KERNELS "-DNULLCUDA_KERNELS_CU=\"$kernels\"" "-DNULLCUDA_KERNEL_TABLE=\"$out/kernels.inc\"")
fi

src=$repo_root/scripts/nullcuda/nullcuda.cc
# Everything, cuBLAS included, is in libcuda.so.1: one copy of the streams
# and queues. The binary asks for cuBLAS's symbols at version
# libcublas.so.N, which must be defined by a file of that name; the dynamic
# linker then accepts libcuda's unversioned definitions for them.
"$cxx" "${flags[@]}" -Wl,-soname,libcuda.so.1 -o "$out/libcuda.so.1" "$src"
major=$(sed -n 's/^#define CUBLAS_VER_MAJOR \([0-9]*\).*/\1/p' "$include/cublas_api.h" | head -n1)
[[ -n "$major" ]] || die "cannot read CUBLAS_VER_MAJOR from $include/cublas_api.h"
printf 'int nullcuda_cublas_version_node;\n' >"$out/cublas_shim.c"
printf 'libcublas.so.%s { global: nullcuda_cublas_version_node; local: *; };\n' "$major" >"$out/cublas.map"
"${CC:-gcc}" -O2 -fPIC -shared -Wl,-soname,"libcublas.so.$major" -Wl,--version-script="$out/cublas.map" \
	-o "$out/libcublas.so.$major" "$out/cublas_shim.c" -L"$out" -l:libcuda.so.1
