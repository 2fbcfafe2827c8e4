#!/usr/bin/env python3
"""Summarises throughput lines of ablate and PyTorch (JSON, one measurement a
line, as `benches/train_throughput.sh` collects them): per model, size and
mode the median and range (min-max over the repeats) of each side's images/s
and of the ratio ablate / PyTorch, and, when the lines carry FLOPs per image
and GEMM measurements are present, each side's achieved GFLOP/s as a share of
the machine's fp32 GEMM peak.

Ratios pair the i-th ablate measurement of a model and mode with the i-th
PyTorch one (the two sides of one repeat, measured back to back). The GEMM
peak is the highest median GFLOP/s among the GEMM lines (torch.mm and the
`gemm` crate ablate uses, at each size).

Usage: python3 benches/compare_throughput.py FILE.jsonl [FILE.jsonl ...]
"""
import json
import pathlib
import statistics
import sys
from collections import defaultdict


def side(row: dict) -> str:
    """`ablate` or `pytorch` (older lines name ablate's side `candle`)."""
    return "pytorch" if row["framework"] == "pytorch" else "ablate"


def load(paths: list) -> tuple:
    """Model measurements by (model, size, mode) and side, and GEMM GFLOP/s
    by (side, n), each list in file order."""
    models = defaultdict(lambda: defaultdict(list))
    gemm = defaultdict(list)
    for path in paths:
        for line in pathlib.Path(path).read_text().splitlines():
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if row.get("kind") == "gemm":
                gemm[(side(row), row["n"])].append(row["gflops"])
            else:
                key = (row["model"], row["image_size"], row.get("mode", "train"))
                models[key][side(row)].append(row)
    return models, gemm


def spread(values: list, digits: int = 2) -> str:
    """`median [min-max]`, or the value alone for one measurement."""
    if not values:
        return "-"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    models, gemm = load(sys.argv[1:])
    peak = None
    if gemm:
        print("fp32 GEMM, GFLOP/s: median [min-max] of the repeats")
        print(f"{'n':>6}  {'pytorch (torch.mm)':>24}  {'ablate (gemm crate)':>24}")
        for n in sorted({n for _, n in gemm}):
            print(f"{n:>6}  {spread(gemm.get(('pytorch', n), []), 0):>24}  "
                  f"{spread(gemm.get(('ablate', n), []), 0):>24}")
        peak = max(statistics.median(v) for v in gemm.values())
        print(f"GEMM peak: {peak:.0f} GFLOP/s (highest median above)\n")
    header = (f"{'model':<14}{'px':>5}{'mode':>11}{'n':>3}  {'ablate img/s':>26}  {'pytorch img/s':>26}"
              f"  {'ratio':>18}")
    if peak:
        header += f"  {'ablate GFLOP/s (% peak)':>24}  {'pytorch GFLOP/s (% peak)':>24}"
    print(header)
    for (model, size, mode), sides in models.items():
        ours, theirs = sides.get("ablate", []), sides.get("pytorch", [])
        ours_ips = [r["images_per_s"] for r in ours]
        theirs_ips = [r["images_per_s"] for r in theirs]
        ratios = [a / t for a, t in zip(ours_ips, theirs_ips)]
        line = (f"{model:<14}{size:>5}{mode:>11}{len(ratios):>3}  {spread(ours_ips):>26}  "
                f"{spread(theirs_ips):>26}  {spread(ratios):>18}")
        flops = next((r["flops_per_image"] for r in ours if "flops_per_image" in r), None)
        if peak and flops:
            for values in (ours_ips, theirs_ips):
                if values:
                    achieved = statistics.median(values) * flops / 1e9
                    line += f"  {f'{achieved:.0f} ({100 * achieved / peak:.0f}%)':>24}"
                else:
                    line += f"  {'-':>24}"
        print(line)
    if peak:
        print("\nGFLOP/s: median images/s x FLOPs per image (2 per multiply-add of the convolutions "
              "and the head; training: forward, weight and input gradients; ablate::model::cost)")


if __name__ == "__main__":
    main()
