"""Training throughput of the presets: a training step against a forward pass of the same net.

Usage::

    python benchmarks/training.py [--configs configs/*.yaml] [--batch 8] [--repeats 5]
        [--out benchmarks/results]

For each preset config, at its operator's image size (128 x 128 for the shipped presets) and
batch ``--batch``, it times

* a **training step**: a fresh batch's forward pass, the MSE loss, backward, gradient
  clipping and the Adam update (what :func:`stablerecon.training.train` does per step, data
  generation excluded);
* a **forward pass** of the same net in eval mode without gradients (the baseline),

alternately, keeping the fastest of ``--repeats`` runs of each, and reports samples per
second for both, their ratio, and the wall time the preset's full schedule needs at the
measured step rate (``epochs * steps_per_epoch`` steps). Prints a table and writes
``training.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_json  # noqa: E402
from operators import paired_times  # noqa: E402

from stablerecon.config import TrainingConfig, load_yaml  # noqa: E402
from stablerecon.training import TrainingData, build_model  # noqa: E402

# the training presets (the kernel-experiment configs train with a fixed pair and are not presets;
# audit_*.yaml are audit configs)
CONFIGS = sorted(p for p in (Path(__file__).parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith(("kernel_", "audit_")))


def measure(cfg: TrainingConfig, batch: int, repeats: int) -> dict:
    """Seconds per training step and per forward pass of ``cfg``'s network at ``batch``."""
    torch.manual_seed(cfg.seed)
    op = cfg.operator.build()
    model = build_model(cfg, op)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    x, y = TrainingData(cfg.data, op, seed=cfg.seed).batch(0, batch)

    def step() -> None:
        model.train()
        loss = torch.mean((model(y) - x) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip or float("inf"))
        optimizer.step()

    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model(y)

    t_step, t_forward = paired_times(step, forward, repeats)
    steps = cfg.train.epochs * cfg.train.steps_per_epoch
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_seconds": t_step,
        "forward_seconds": t_forward,
        "train_samples_per_second": batch / t_step,
        "forward_samples_per_second": batch / t_forward,
        "ratio_step_over_forward": t_step / t_forward,
        "schedule_steps": steps,
        "schedule_minutes_at_this_rate": steps * t_step / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=Path, nargs="+", default=CONFIGS)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    rows = {}
    for path in args.configs:
        cfg = load_yaml(path, TrainingConfig)
        rows[cfg.name] = {"config": str(path), "size": cfg.operator.size,
                          **measure(cfg, args.batch, args.repeats)}
    payload = {"benchmark": "training", "machine": platform.platform(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "batch": args.batch, "repeats": args.repeats, "rows": rows}
    write_json(args.out / "training.json", payload)

    print(f"batch {args.batch}, {torch.get_num_threads()} threads, best of {args.repeats}")
    print(f"{'preset':<20}{'params':>10}{'train samples/s':>17}{'forward samples/s':>19}"
          f"{'step/forward':>14}{'schedule [min]':>16}")
    for name, r in rows.items():
        print(f"{name:<20}{r['parameters']:>10,}{r['train_samples_per_second']:>17.1f}"
              f"{r['forward_samples_per_second']:>19.1f}{r['ratio_step_over_forward']:>14.2f}"
              f"{r['schedule_minutes_at_this_rate']:>16.1f}")
    print(f"wrote {args.out / 'training.json'}")


if __name__ == "__main__":
    main()
