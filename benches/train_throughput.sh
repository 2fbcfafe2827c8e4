#!/usr/bin/env bash
# Training throughput, candle (ablate) vs PyTorch, measured in one run on this
# machine. Prints both images/s per model and the ratio candle / PyTorch.
# Usage: bash benches/train_throughput.sh [--steps N] [--models resnet18@224,resnet10-w16@64]
# PYTHON selects the interpreter that has torch and torchvision (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=$(mktemp -d)
cargo bench --bench train_throughput -- "$@" | grep '^{' >"$out/candle.jsonl"
"$python" benches/pytorch_reference.py "$@" >"$out/pytorch.jsonl"
"$python" - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
load = lambda f: {(r["model"], r["image_size"]): r for r in map(json.loads, (out / f).read_text().splitlines())}
candle, torch = load("candle.jsonl"), load("pytorch.jsonl")
print(f"{'model':<16}{'px':>5}{'candle img/s':>14}{'pytorch img/s':>15}{'ratio':>8}")
for key, c in candle.items():
    t = torch.get(key)
    ratio = c["images_per_s"] / t["images_per_s"] if t else float("nan")
    print(f"{key[0]:<16}{key[1]:>5}{c['images_per_s']:>14.2f}{(t or {}).get('images_per_s', float('nan')):>15.2f}{ratio:>8.2f}")
PY
