#!/usr/bin/env python3
"""Writes the torchvision reference fixture for the ResNet tests.

Builds a narrow ResNet-18 (BasicBlock, [2, 2, 2, 2], base width 4, 2 classes)
with torchvision's own module tree, so every parameter carries exactly the
torchvision name (conv1.weight, layer2.0.downsample.1.running_var, fc.bias, ...).
Weights and BatchNorm running statistics are randomised from a fixed seed, then
the script records, for one fixed input batch:

- eval-mode logits and pooled features;
- train-mode logits and pooled features (batch statistics), the running
  statistics after that one train-mode forward, and the gradients of a
  cross-entropy loss with respect to a few parameters.

Outputs (all under tests/fixtures/resnet/):
  tiny.safetensors       the state dict, torchvision names, incl. num_batches_tracked
  tiny_io.safetensors    input, labels and expected outputs
  tiny_config.json       the ResNetConfig the Rust side must build

Usage: python scripts/make_resnet_fixture.py  (needs torch, torchvision, safetensors)
"""

import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from fixture_weights import randomise
from torchvision.models.resnet import BasicBlock, ResNet

SEED = 20240601
LAYERS = [2, 2, 2, 2]
BASE_WIDTH = 4
NUM_CLASSES = 2
INPUT_SHAPE = (2, 3, 38, 38)  # odd intermediate sizes: 38 -> 19 -> pool 10 -> 5 -> 3 -> 2
GRAD_NAMES = [
    "conv1.weight",
    "bn1.weight",
    "bn1.bias",
    "layer1.0.conv1.weight",
    "layer2.0.downsample.0.weight",
    "layer2.0.downsample.1.weight",
    "layer3.1.bn2.weight",
    "layer4.0.bn1.bias",
    "fc.weight",
    "fc.bias",
]
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "resnet")


class NarrowResNet(ResNet):
    """torchvision's ResNet with a configurable base width.

    torchvision hard-codes 64/128/256/512 channels (width_per_group only
    affects Bottleneck), so this repeats its constructor with widths
    base * (1, 2, 4, 8), reusing its _make_layer and forward so that the module
    names and the computation are torchvision's.
    """

    def __init__(self, layers, base_width, num_classes):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = base_width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64  # per-group width of BasicBlock, must stay 64
        self.conv1 = nn.Conv2d(3, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, base_width, layers[0])
        self.layer2 = self._make_layer(BasicBlock, base_width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, base_width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, base_width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(base_width * 8 * BasicBlock.expansion, num_classes)

    def features_and_logits(self, x):
        """One pass returning (pooled features, logits), as torchvision's forward."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        features = torch.flatten(self.avgpool(x), 1)
        return features, self.fc(features)


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = NarrowResNet(LAYERS, BASE_WIDTH, NUM_CLASSES)
    randomise(model, gen, batches_tracked=7)
    x = torch.randn(INPUT_SHAPE, generator=gen)
    labels = torch.tensor([0, 1], dtype=torch.int64)

    weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    model.eval()
    with torch.no_grad():
        eval_features, eval_logits = model.features_and_logits(x)

    model.train()
    train_features, train_logits = model.features_and_logits(x)
    loss = F.cross_entropy(train_logits, labels)
    loss.backward()

    io = {
        "input": x,
        "labels": labels,
        "eval_logits": eval_logits,
        "eval_features": eval_features,
        "train_logits": train_logits.detach(),
        "train_features": train_features.detach(),
        "train_loss": loss.detach().reshape(1),
    }
    params = dict(model.named_parameters())
    for name in GRAD_NAMES:
        io["grad." + name] = params[name].grad.detach().clone()
    for name, buf in model.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            io["after_train." + name] = buf.detach().clone()

    os.makedirs(OUT_DIR, exist_ok=True)
    # One metadata key: safetensors writes the metadata map in hash order, so
    # several keys would make the bytes differ from run to run.
    meta = {"generator": f"scripts/make_resnet_fixture.py, torch {torch.__version__}, seed {SEED}"}
    save_file(weights, os.path.join(OUT_DIR, "tiny.safetensors"), metadata=meta)
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(OUT_DIR, "tiny_io.safetensors"), metadata=meta)
    config = {"layers": LAYERS, "base_width": BASE_WIDTH, "num_classes": NUM_CLASSES}
    with open(os.path.join(OUT_DIR, "tiny_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    total = sum(os.path.getsize(os.path.join(OUT_DIR, n)) for n in os.listdir(OUT_DIR))
    print(f"torch {torch.__version__}: {sum(v.numel() for v in weights.values())} weight values, "
          f"fixture total {total} bytes, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
