#!/usr/bin/env python3
"""Joins candle and PyTorch throughput lines (JSON, one per model, size and
mode) and prints images/s of both and the ratio candle / PyTorch.

Usage: python3 benches/compare_throughput.py CANDLE.jsonl PYTORCH.jsonl
"""
import json
import pathlib
import sys


def load(path: str) -> dict:
    rows = (json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.startswith("{"))
    return {(r["model"], r["image_size"], r.get("mode", "train")): r for r in rows}


def main() -> None:
    candle, torch = load(sys.argv[1]), load(sys.argv[2])
    print(f"{'model':<16}{'px':>5}{'mode':>11}{'candle img/s':>14}{'pytorch img/s':>15}{'ratio':>8}")
    for key, c in candle.items():
        t = torch.get(key)
        theirs = t["images_per_s"] if t else float("nan")
        print(f"{key[0]:<16}{key[1]:>5}{key[2]:>11}{c['images_per_s']:>14.2f}{theirs:>15.2f}"
              f"{c['images_per_s'] / theirs:>8.2f}")


if __name__ == "__main__":
    main()
