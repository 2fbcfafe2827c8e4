#!/usr/bin/env python3
"""Write tests/fixtures/schedule.json: the reference implementation's learning
rate, epoch by epoch, for src/train/schedule.rs.

The reference returns `CosineAnnealingLR(optimizer, T_max = 10 x batches per
epoch)` from `configure_optimizers` without an `interval`, so Lightning steps it
once per epoch. This script does exactly that with PyTorch's own scheduler: an
Adam optimiser on one parameter, `optimizer.step()` for every batch of an
epoch, then `scheduler.step()`. It records the rate in force after `t`
scheduler steps for t = 0..epochs (t = 0: the first epoch's rate; t = epochs:
the rate after the last epoch). The Rust test compares to a relative 1e-12.

Regenerate with

    python scripts/make_schedule_fixture.py [output file]

(needs torch).
"""

import json
import pathlib
import sys

import torch

# (base rate, eta_min, batches per epoch, epochs). The first is the reference
# run on the public data: 623 training patches in batches of 32 give 20
# batches per epoch, for 30 epochs. The others check other rates, a floor,
# and epochs past T_max (batches 1 and 2: T_max 10 and 20), where PyTorch's
# rate rises again along the cosine.
CASES = [
    (1e-4, 0.0, 20, 30),
    (1e-3, 1e-5, 7, 12),
    (1e-4, 0.0, 2, 30),
    (3e-4, 1e-6, 1, 30),
]


def rates(base_lr, eta_min, batches, epochs):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=10 * batches, eta_min=eta_min
    )
    out = [optimizer.param_groups[0]["lr"]]
    for _ in range(epochs):
        for _ in range(batches):
            optimizer.zero_grad()
            parameter.sum().backward()
            optimizer.step()
        scheduler.step()
        out.append(optimizer.param_groups[0]["lr"])
    return out


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "tests/fixtures/schedule.json"
    cases = [
        {
            "base_lr": base_lr,
            "min_lr": eta_min,
            "batches_per_epoch": batches,
            "epochs": epochs,
            "rates": rates(base_lr, eta_min, batches, epochs),
        }
        for base_lr, eta_min, batches, epochs in CASES
    ]
    document = {
        "generator": "scripts/make_schedule_fixture.py",
        "torch_version": torch.__version__,
        "scheduler": "torch.optim.lr_scheduler.CosineAnnealingLR(T_max = 10 * batches_per_epoch), stepped once per epoch",
        "cases": cases,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
