#!/usr/bin/env bash
# Training and inference throughput, ablate vs PyTorch (torchvision ResNets),
# on this machine, robust to a machine whose load changes: the two sides are
# measured alternately, model by model and mode by mode (which side goes
# first alternates between repeats), and the whole round is repeated R times.
# Each round also measures the machine's fp32 GEMM GFLOP/s (torch.mm and the
# `gemm` crate ablate's convolutions use, on 2048 and 4096 square matrices).
#
# Prints the GEMM GFLOP/s, then per model and mode the median and range
# (min-max over the repeats) of each side's images/s and of the ratio
# ablate / PyTorch (each repeat's pair), and each side's achieved GFLOP/s
# (images/s x FLOPs per image, see ablate::model::cost) as a share of the
# GEMM peak, so numbers from different machines compare.
#
# Usage: bash benches/train_throughput.sh [--repeats R] [--models resnet18@224,resnet10-w16@64]
#          [--modes train,inference] [--gemm 2048,4096] [--batch N] [--steps N] [--seconds S] [--warmup N]
# --repeats defaults to 5; --batch (32), --steps (5), --seconds (4: at least
# that long per measurement) and --warmup (2) go to both sides. PYTHON
# selects the interpreter with torch and torchvision (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
repeats=5
models=resnet18@224,resnet10-w16@64
modes=train,inference
gemm_sizes=2048,4096
both=()
while (($#)); do
  case "$1" in
    --repeats) repeats=$2 ;;
    --models) models=$2 ;;
    --modes) modes=$2 ;;
    --gemm) gemm_sizes=$2 ;;
    --batch | --steps | --seconds | --warmup) both+=("$1" "$2") ;;
    *)
      echo "error: unknown option '$1' (see the usage at the top of $0)" >&2
      exit 2
      ;;
  esac
  shift 2
done
if ! "$python" -c 'import torch, torchvision' 2>/dev/null; then
  echo "error: '$python' cannot import torch and torchvision; set PYTHON to an interpreter that can" >&2
  exit 2
fi
bench=$(cargo bench --bench train_throughput --no-run 2>&1 |
  sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
if [[ ! -x "$bench" ]]; then
  echo "error: could not build the train_throughput benchmark (cargo bench --bench train_throughput --no-run)" >&2
  exit 1
fi
log=$(mktemp -d)/measurements.jsonl
ablate_side() { "$bench" "$@" ${both[@]+"${both[@]}"} | grep '^{' >>"$log"; }
pytorch_side() { "$python" benches/pytorch_reference.py "$@" ${both[@]+"${both[@]}"} >>"$log"; }
load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }

echo "load average at start: $(load)"
for ((repeat = 1; repeat <= repeats; repeat++)); do
  first=ablate_side second=pytorch_side
  if ((repeat % 2 == 0)); then first=pytorch_side second=ablate_side; fi
  echo "repeat $repeat of $repeats (load $(load))" >&2
  $first --gemm "$gemm_sizes"
  $second --gemm "$gemm_sizes"
  for model in ${models//,/ }; do
    for mode in ${modes//,/ }; do
      $first --models "$model" --modes "$mode"
      $second --models "$model" --modes "$mode"
    done
  done
done
echo "load average at end: $(load)"
echo
"$python" benches/compare_throughput.py "$log"
echo
echo "every measurement: $log"
