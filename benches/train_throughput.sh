#!/usr/bin/env bash
# Training and inference throughput, candle (ablate) vs PyTorch, measured in
# one run on this machine. Prints both images/s per model and mode and the
# ratio candle / PyTorch.
# Usage: bash benches/train_throughput.sh [--steps N] [--models resnet18@224,resnet10-w16@64]
# PYTHON selects the interpreter that has torch and torchvision (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=$(mktemp -d)
cargo bench --bench train_throughput -- "$@" | grep '^{' >"$out/candle.jsonl"
"$python" benches/pytorch_reference.py --modes train,inference "$@" >"$out/pytorch.jsonl"
"$python" benches/compare_throughput.py "$out/candle.jsonl" "$out/pytorch.jsonl"
