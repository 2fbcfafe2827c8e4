#!/usr/bin/env python3
"""PyTorch reference for ablate's training-throughput benchmark.

Trains torchvision ResNets with the same settings as `cargo bench --bench
train_throughput` (Adam, cross-entropy, batch 32, random inputs, train-mode
batch norm) and prints one JSON line per model with images per second, so
the two can be compared on the same machine in the same run.

With `--gemm 2048,4096` it measures only the GFLOP/s of `torch.mm` on
square fp32 matrices of those sizes (the machine's reference speed).

Usage: python3 benches/pytorch_reference.py [--threads N] [--steps N] [--models resnet18@224,resnet10-w16@64]
                                           [--device cpu|cuda] [--modes train,inference] [--tf32]
                                           [--gemm 2048,4096]
"""
import argparse
import math
import json
import time

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet


def build(name: str) -> nn.Module:
    """torchvision ResNet for ablate's model names (resnet18, resnet10-w16, ...)."""
    depth_part, _, width_part = name.partition("-w")
    depth = int(depth_part.removeprefix("resnet"))
    layers = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth]
    width = int(width_part) if width_part else 64
    if width == 64:
        return ResNet(BasicBlock, layers, num_classes=2)
    # Narrow variant: torchvision's structure and names with every width scaled.
    model = ResNet(BasicBlock, layers, num_classes=2)
    scale = width / 64

    def rebuild(module: nn.Module) -> None:
        for child_name, child in module.named_children():
            if isinstance(child, nn.Conv2d):
                in_ch = 3 if child.in_channels == 3 else int(child.in_channels * scale)
                setattr(module, child_name, nn.Conv2d(in_ch, int(child.out_channels * scale), child.kernel_size,
                                                      child.stride, child.padding, bias=False))
            elif isinstance(child, nn.BatchNorm2d):
                setattr(module, child_name, nn.BatchNorm2d(int(child.num_features * scale)))
            elif isinstance(child, nn.Linear):
                setattr(module, child_name, nn.Linear(int(child.in_features * scale), child.out_features))
            else:
                rebuild(child)

    rebuild(model)
    return model


def measure(name: str, size: int, batch: int, steps: int, warmup: int, device: str, mode: str,
            seconds: float = 0.0) -> dict:
    """Images per second of Adam training steps or eval-mode forward passes;
    with `seconds`, a one-step probe first raises `steps` so that the
    measurement takes about that long."""
    if seconds > 0:
        probe = measure(name, size, batch, 1, 1, device, mode)["images_per_s"]
        steps = max(steps, math.ceil(seconds * probe / batch))
    torch.manual_seed(0)
    model = build(name).to(device)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    if mode == "train":
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=0.0)
        loss_fn = nn.CrossEntropyLoss()

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step() -> None:
            with torch.no_grad():
                model(images)

    def synchronize() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    elapsed = time.perf_counter() - started
    return {"framework": "pytorch", "kind": "model", "mode": mode, "model": name, "image_size": size, "batch": batch,
            "steps": steps, "device": device, "threads": torch.get_num_threads(),
            "tf32": device.startswith("cuda") and torch.backends.cudnn.allow_tf32,
            "images_per_s": batch * steps / elapsed, "torch": torch.__version__}


def gemm_gflops(n: int, device: str) -> dict:
    """GFLOP/s (2 n^3 per product) of torch.mm on n x n fp32 matrices: the
    best of three timed products after one warm-up."""
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    best = math.inf
    for rep in range(4):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if rep > 0:
            best = min(best, time.perf_counter() - started)
    return {"framework": "pytorch", "kind": "gemm", "n": n, "device": device,
            "threads": torch.get_num_threads(), "gflops": 2 * n ** 3 / best / 1e9, "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="measure at least this long (more steps than --steps if needed)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--models", default="resnet18@224,resnet10-w16@64")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--modes", default="train", help="comma-separated: train, inference")
    parser.add_argument("--gemm", default="",
                        help="comma-separated square sizes: measure only torch.mm GFLOP/s at these sizes")
    parser.add_argument("--tf32", action="store_true",
                        help="let cuDNN and cuBLAS use TF32 (PyTorch's default for convolutions); "
                             "off by default so both sides compute in fp32")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    if args.gemm:
        for n in args.gemm.split(","):
            print(json.dumps(gemm_gflops(int(n), args.device)), flush=True)
        return
    for spec in args.models.split(","):
        name, _, size = spec.partition("@")
        for mode in args.modes.split(","):
            print(json.dumps(measure(name, int(size), args.batch, args.steps, args.warmup, args.device, mode, args.seconds)),
                  flush=True)


if __name__ == "__main__":
    main()
