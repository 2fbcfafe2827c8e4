"""Randomised weights for the fixture scripts (make_resnet_fixture.py,
make_pth_fixture.py): non-trivial weights and running statistics, so that a
wrong name, a transposed tensor or eval/train confusion changes the outputs."""

import torch
import torch.nn as nn


def randomise(model, gen, batches_tracked):
    """Draws every Conv2d, BatchNorm2d and Linear parameter of `model` from
    `gen`, in module order; BatchNorm's num_batches_tracked becomes
    `batches_tracked`."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.normal_(0.0, 0.2, generator=gen)
                module.running_mean.normal_(0.0, 0.3, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
                module.num_batches_tracked.fill_(batches_tracked)
            elif isinstance(module, nn.Linear):
                module.weight.normal_(0.0, 0.3, generator=gen)
                module.bias.normal_(0.0, 0.1, generator=gen)
