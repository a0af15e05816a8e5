"""Cost of the stability audit: one worst-case search, and the whole demo.

Usage::

    python benchmarks/audit.py [--steps 100] [--size 128] [--skip-demo] [--out benchmarks/results]

For the shipped U-Net post-processing network and for FIRENET at ``--size`` (25%
variable-density Fourier, one held-out ellipse phantom) it times one worst-case search
(:func:`stablerecon.audit.worst_case`, budget 2%, ``--steps`` gradient steps, one restart)
and, as the baseline in the same run, ``--steps`` bare forward + backward passes of the same
method (the ratio is the search's own overhead: projections, bookkeeping). Unless
``--skip-demo``, it then runs the whole ``stablerecon demo`` audit into a temporary folder and
reports its wall time per method. Prints a table and writes ``audit.json``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from stablerecon.audit import worst_case
from stablerecon.data import ellipses
from stablerecon.files import write_json
from stablerecon.nets import FIRENet
from stablerecon.operators import SubsampledFourier, masks
from stablerecon.runner import demo_config, run_audit_config
from stablerecon.training import pretrained


def _search(method, y, op, steps: int) -> float:  # noqa: ANN001
    started = time.perf_counter()
    worst_case(method, y, op, budgets=[0.02], steps=steps, restarts=1, seed=0)
    return time.perf_counter() - started


def _bare(method, y, op, steps: int) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for _ in range(steps + 1):  # the search evaluates steps + 1 iterates
        e = torch.zeros_like(y).requires_grad_(True)
        loss = torch.linalg.vector_norm(method(y + e, op)).sum()
        torch.autograd.grad(loss, e)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    op = SubsampledFourier(masks.variable_density(args.size, 0.25, seed=0))
    y = op.A(ellipses(1, args.size, seed=100))
    methods = {"U-Net": pretrained("unet_fourier128", op), "FIRENET": FIRENet(op)}
    rows = {}
    for name, method in methods.items():
        bare = _bare(method, y, op, args.steps)
        search = _search(method, y, op, args.steps)
        rows[name] = {"search_seconds": search, "bare_seconds": bare, "ratio_search_over_bare": search / bare}
    payload = {"benchmark": "audit", "machine": platform.platform(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "size": args.size, "steps": args.steps, "budget": 0.02,
               "worst_case": rows}
    if not args.skip_demo:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            (result,) = run_audit_config(demo_config(), Path(tmp) / "demo", progress=sys.stderr.isatty())
            total = time.perf_counter() - started
        per_method: dict[str, float] = {}
        for key, seconds in result.timings.items():
            method = key.split(": ")[0]
            per_method[method] = per_method.get(method, 0.0) + seconds
        payload["demo"] = {"seconds": total, "per_method_seconds": per_method, "limit_seconds": 600}
    write_json(args.out / "audit.json", payload)

    print(f"worst-case search: budget 2%, {args.steps} steps, 1 restart, {args.size} x {args.size}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'method':<10}{'search [s]':>12}{'bare f+b [s]':>14}{'ratio':>8}")
    for name, r in rows.items():
        print(f"{name:<10}{r['search_seconds']:>12.2f}{r['bare_seconds']:>14.2f}{r['ratio_search_over_bare']:>8.2f}")
    if "demo" in payload:
        demo = payload["demo"]
        print(f"demo: {demo['seconds']:.0f} s in all (limit 600 s)")
        for m, s in demo["per_method_seconds"].items():
            print(f"  {m:<18}{s:>8.1f} s")
    print(f"wrote {args.out / 'audit.json'}")


if __name__ == "__main__":
    main()
