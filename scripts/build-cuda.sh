#!/usr/bin/env bash
# Build ablate with candle's CUDA backend, also on a machine with no GPU and no
# CUDA toolkit.
#
#   scripts/build-cuda.sh            release binary: target/release/ablate, and a
#                                    stripped, gzipped copy in target/cuda-dist/
#   scripts/build-cuda.sh check      type-check every target with `--features cuda`
#
# Where `nvcc` is on PATH (a CUDA toolkit is installed), it is used as is.
# Otherwise nvcc, the CUDA headers and the libraries are installed from PyPI
# into a private virtual environment (target/cuda-toolchain), pinned to one
# CUDA version (CUDA_VERSION, default 13.0, which driver 580 runs), and the
# driver library the linker needs is replaced by a stub with the same symbol
# names: the binary resolves the real `libcuda.so.1` on the GPU machine.
#
# Environment: CUDA_COMPUTE_CAP (default 90: H100/H200), CUDA_VERSION (13.0),
# PYTHON (python3), CARGO_TARGET_DIR (target).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-release}
case "$mode" in
  release | check) ;;
  *) echo "usage: $0 [release|check]" >&2; exit 2 ;;
esac

export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
cuda_version=${CUDA_VERSION:-13.0}
target_dir=${CARGO_TARGET_DIR:-target}
toolchain=$PWD/$target_dir/cuda-toolchain
[[ "$target_dir" = /* ]] && toolchain=$target_dir/cuda-toolchain

# Pinned PyPI packages for each supported CUDA version. nvcc, nvvm and the
# headers must not be newer than the driver of the GPU machine, or ptxas
# rejects the PTX version.
declare -A pins=(
  [13.0]="nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
          nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
          nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35"
)

install_toolchain() {
  local packages=${pins[$cuda_version]:-}
  if [[ -z "$packages" ]]; then
    echo "no pinned CUDA packages for CUDA_VERSION=$cuda_version (known: ${!pins[*]})" >&2
    exit 2
  fi
  local stamp=$toolchain/.installed-$cuda_version
  if [[ ! -f "$stamp" ]]; then
    echo "== installing CUDA $cuda_version compiler and libraries into $toolchain"
    "${PYTHON:-python3}" -m venv "$toolchain/venv"
    # shellcheck disable=SC2086
    "$toolchain/venv/bin/pip" install --quiet --disable-pip-version-check $packages
    touch "$stamp"
  fi
  local cuda_root
  cuda_root=$(echo "$toolchain"/venv/lib/python3*/site-packages/nvidia/cu13)
  [[ -x "$cuda_root/bin/nvcc" ]] || { echo "nvcc missing under $cuda_root" >&2; exit 1; }
  export PATH=$cuda_root/bin:$PATH
  export CUDA_ROOT=$cuda_root CUDA_PATH=$cuda_root CUDA_HOME=$cuda_root

  # Unversioned names for the linker, and a stub of the driver library.
  local links=$toolchain/link
  mkdir -p "$links"
  for lib in cublas cublasLt curand cudart nvrtc; do
    local versioned
    versioned=$(ls "$cuda_root"/lib/lib$lib.so.* 2>/dev/null | head -1)
    [[ -n "$versioned" ]] || { echo "lib$lib.so.* missing under $cuda_root/lib" >&2; exit 1; }
    ln -sf "$versioned" "$links/lib$lib.so"
  done
  if [[ ! -f "$links/libcuda.so" ]]; then
    local cudarc_src
    cudarc_src=$(cargo metadata --format-version 1 --locked --features cuda |
      "${PYTHON:-python3}" -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="cudarc"))')
    cudarc_src=$(dirname "$cudarc_src")
    grep -hoE 'pub unsafe fn cu[A-Z][A-Za-z0-9_]*' "$cudarc_src/src/driver/sys/mod.rs" |
      sed 's/pub unsafe fn //' | sort -u | sed 's/.*/void &(void) {}/' > "$links/cuda-stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$links/libcuda.so" "$links/cuda-stub.c"
  fi
  export LIBRARY_PATH=$links:$cuda_root/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
}

if command -v nvcc >/dev/null 2>&1; then
  echo "== using the installed CUDA toolkit: $(command -v nvcc)"
else
  install_toolchain
fi

if [[ "$mode" == check ]]; then
  echo "== cargo check --features cuda --all-targets"
  cargo check --locked --features cuda --all-targets
else
  echo "== cargo build --release --features cuda"
  cargo build --locked --release --features cuda
  echo "built $target_dir/release/ablate (CUDA, compute capability $CUDA_COMPUTE_CAP)"
  # A stripped, compressed copy to send to a GPU machine (about 15 MB).
  mkdir -p "$target_dir/cuda-dist"
  strip -o "$target_dir/cuda-dist/ablate" "$target_dir/release/ablate"
  gzip -f "$target_dir/cuda-dist/ablate"
  echo "and $target_dir/cuda-dist/ablate.gz: copy it over; benches/gpu_check.sh takes it as is"
  echo "on the GPU machine, put the folder holding libcublas.so.13 / libcurand.so.10 /"
  echo "libcudart.so.13 (e.g. site-packages/nvidia/cu13/lib of a PyTorch install) on LD_LIBRARY_PATH"
fi
