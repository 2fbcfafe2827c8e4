#!/usr/bin/env bash
# GPU check: ablate's CUDA training against PyTorch on the same GPU, one small
# GPU experiment, and one training cell on CPU and GPU side by side.
#
#   bash benches/gpu_check.sh [ABLATE_BINARY]       (default target/release/ablate;
#                                                    a .gz binary is unpacked first)
#
# Runs on a GPU machine without cargo or internet: the binary is built
# elsewhere with `scripts/build-cuda.sh` and copied over; python3 must have
# torch and torchvision (PYTHON selects another interpreter). The CUDA
# libraries the binary links (libcublas.so.13, libcurand.so.10,
# libcudart.so.13) are looked up in the CUDA toolkit and in the nvidia/*
# packages of that Python, and put on LD_LIBRARY_PATH.
#
# Prints, in order: the device; resnet18 at 224 px, batch 32, training and
# inference images/s of ablate and PyTorch (fp32 on both sides: TF32 off)
# with their ratio; a timed `ablate run experiments/gpu-smoke.toml`; the test
# metrics of one cell trained on the CPU and twice on the GPU, with their
# largest differences. Everything also goes to reports/gpu-check/.
#
# Environment: STEPS (steps measured per mode, default 100), DEVICE (default
# cuda; `DEVICE=cpu` rehearses the whole script on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

ablate=$(realpath "${1:-target/release/ablate}")
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
steps=${STEPS:-100}
out=reports/gpu-check
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
if [[ "$ablate" == *.gz ]]; then
  gunzip -c "$ablate" >"$out/ablate"
  chmod +x "$out/ablate"
  ablate=$(realpath "$out/ablate")
fi
section() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

section "libraries"
lib_dirs=$(
  "$python" - <<'PY'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
dirs = []
for root in roots:
    dirs += glob.glob(os.path.join(root, "nvidia", "*", "lib"))
    dirs += glob.glob(os.path.join(root, "torch", "lib"))
print(":".join(d for d in dirs if os.path.isdir(d)))
PY
)
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d "$dir" ]] && lib_dirs="$lib_dirs:$dir"
done
export LD_LIBRARY_PATH="${lib_dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$ablate" | grep 'not found'; then
  echo "error: $ablate needs libraries that are on neither LD_LIBRARY_PATH nor the system path" >&2
  exit 1
fi
ldd "$ablate" | grep -E 'libcu|libnv' || echo "(no CUDA libraries linked: a CPU-only binary)"

section "device"
if [[ "$device" == cuda* ]]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
"$python" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda)'

section "training and inference throughput: resnet18, 224 px, batch 32, fp32"
"$ablate" --quiet speed --model resnet18 --image-size 224 --batch 32 \
  --steps "$steps" --warmup 5 --device "$device" | tee "$out/ablate_speed.jsonl"
"$python" benches/pytorch_reference.py --models resnet18@224 --batch 32 \
  --steps "$steps" --seconds 0 --warmup 5 --device "$device" --modes train,inference | tee "$out/pytorch_speed.jsonl"
"$python" benches/compare_throughput.py "$out/ablate_speed.jsonl" "$out/pytorch_speed.jsonl"
echo "(PyTorch with its default TF32 convolutions, for reference:)"
"$python" benches/pytorch_reference.py --models resnet18@224 --batch 32 \
  --steps "$steps" --seconds 0 --warmup 5 --device "$device" --modes train --tf32

section "ablate run experiments/gpu-smoke.toml"
started=$(date +%s)
"$ablate" --quiet run experiments/gpu-smoke.toml --device "$device" --output "$out/smoke"
echo "wall time: $(($(date +%s) - started)) s"
column -s, -t <"$out/smoke/results.csv" | cut -c1-200 | head -20

section "one cell on the CPU and on the GPU (twice): test metrics"
cell=(--synthetic --model resnet10-w16 --image-size 64 --epochs 3 --lr 1e-3 --seed 0)
"$ablate" --quiet train "${cell[@]}" --device cpu --out "$out/cell-cpu"
"$ablate" --quiet train "${cell[@]}" --device "$device" --out "$out/cell-gpu-1"
"$ablate" --quiet train "${cell[@]}" --device "$device" --out "$out/cell-gpu-2"
"$python" - "$out" <<'PY'
import csv, pathlib, sys
out = pathlib.Path(sys.argv[1])
def number(text):
    try:
        return float(text)
    except ValueError:
        return None
METRICS = ("loss", "auroc", "auprc", "sensitivity", "specificity", "precision", "f1", "accuracy")
def metrics(run):
    """{metric: value} of the model's test metrics in results.csv (the weak row)."""
    for row in csv.DictReader(open(out / run / "results.csv")):
        if row["model"] == "weak":
            return {k: number(row[k]) for k in METRICS if number(row[k]) is not None}
    raise SystemExit(f"{run}/results.csv has no weak row")
cpu, gpu1, gpu2 = metrics("cell-cpu"), metrics("cell-gpu-1"), metrics("cell-gpu-2")
print(f"{'metric':<28}{'cpu':>12}{'gpu run 1':>12}{'gpu run 2':>12}{'|cpu-gpu|':>12}{'|gpu1-gpu2|':>13}")
for key in METRICS:
    if key not in cpu:
        continue
    a, b, c = cpu[key], gpu1.get(key, float("nan")), gpu2.get(key, float("nan"))
    print(f"{key:<28}{a:>12.6f}{b:>12.6f}{c:>12.6f}{abs(a - b):>12.2e}{abs(b - c):>13.2e}")
worst = max(abs(gpu1[k] - gpu2[k]) for k in gpu1 if k in gpu2)
print(f"same seed, same device, two runs: largest metric difference {worst:.2e}"
      f" ({'within' if worst <= 1e-6 else 'ABOVE'} 1e-6)")
PY
section "done"
