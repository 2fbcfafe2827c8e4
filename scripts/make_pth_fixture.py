#!/usr/bin/env python3
"""Writes the PyTorch-format fixture for the .pth loader tests.

A narrow ResNet-18 state dict with torchvision's parameter names (BasicBlock,
layers [1, 1, 1, 1], base width 4, a 10-class head standing in for ImageNet's
1000 classes), randomised from a fixed seed, saved twice:

  tests/fixtures/pth/tiny.pth           torch.save(model.state_dict(), path): PyTorch's
                                        zip format, the format of torchvision's published
                                        weights (an OrderedDict with _metadata, float32
                                        parameters, int64 num_batches_tracked scalars)
  tests/fixtures/pth/tiny.safetensors   the same tensors, safetensors.torch.save_file
  tests/fixtures/pth/tiny_config.json   the ResNetConfig the Rust side builds

The module tree repeats torchvision's names (conv1, bn1, layerN.B.conv1, ...,
layerN.0.downsample.0/1, fc) without needing torchvision; the architecture
itself is checked against torchvision by scripts/make_resnet_fixture.py.

Usage: python scripts/make_pth_fixture.py  (needs torch and safetensors)
"""

import json
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

from fixture_weights import randomise

SEED = 20240917
LAYERS = [1, 1, 1, 1]
BASE_WIDTH = 4
NUM_CLASSES = 10
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "pth")


class Block(nn.Module):
    """torchvision's BasicBlock parameters: conv1, bn1, conv2, bn2, downsample."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )


class Net(nn.Module):
    """torchvision's ResNet parameter tree at base width BASE_WIDTH."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, BASE_WIDTH, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(BASE_WIDTH)
        inplanes = BASE_WIDTH
        for stage, blocks in enumerate(LAYERS):
            planes = BASE_WIDTH * 2**stage
            layer = []
            for b in range(blocks):
                layer.append(Block(inplanes, planes, 2 if stage > 0 and b == 0 else 1))
                inplanes = planes
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(inplanes, NUM_CLASSES)


def main():
    gen = torch.Generator().manual_seed(SEED)
    model = Net()
    randomise(model, gen, batches_tracked=11)
    state = model.state_dict()

    os.makedirs(OUT_DIR, exist_ok=True)
    torch.save(state, os.path.join(OUT_DIR, "tiny.pth"))
    meta = {"generator": f"scripts/make_pth_fixture.py, torch {torch.__version__}, seed {SEED}"}
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        os.path.join(OUT_DIR, "tiny.safetensors"),
        metadata=meta,
    )
    config = {"layers": LAYERS, "base_width": BASE_WIDTH, "num_classes": NUM_CLASSES}
    with open(os.path.join(OUT_DIR, "tiny_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    # The .pth file must round-trip in torch itself.
    loaded = torch.load(os.path.join(OUT_DIR, "tiny.pth"), weights_only=True)
    assert list(loaded) == list(state) and all(torch.equal(loaded[k], state[k]) for k in state)

    total = sum(os.path.getsize(os.path.join(OUT_DIR, n)) for n in os.listdir(OUT_DIR))
    print(f"torch {torch.__version__}: {len(state)} tensors, "
          f"{sum(v.numel() for v in state.values())} values, fixture total {total} bytes")


if __name__ == "__main__":
    main()
