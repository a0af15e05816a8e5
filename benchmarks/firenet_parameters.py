"""How FIRENET's ``lam`` and ``p`` (``inner``) interact: a grid study in both regimes.

Usage::

    python benchmarks/firenet_parameters.py [--sizes 64 128 256] [--lams 1e-3 2e-3 ...]
        [--inners 5 8 10] [--kinds fourier hadamard] [--out benchmarks/results]

For every operator, size, ``lam`` and ``p`` it reports

* **sparse**: the layers FIRENET needs to reach relative error 1e-5 on the exactly Haar-sparse
  image, noiseless (``-`` if not within 150 layers: the restarts stall);
* **noisy**: the layers it needs to come within 10% of the error floor (the error of the
  square-root LASSO minimiser) on Shepp-Logan, random ellipses and ``camera`` with 2% noise,
  the worst of the three (``-`` if not within 100 layers).

Each finished case is written to ``firenet_parameters.json`` at once, so an interrupted run
resumes where it stopped. Prints a table at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from _results import write_json
from firenet_problems import (
    NATURAL,
    firenet_curve,
    first_reaching,
    floor,
    image,
    measurements,
    operator,
)
from tqdm.auto import tqdm

SPARSE_TARGET, SPARSE_LAYERS = 1e-5, 150
NOISY_FACTOR, NOISY_LAYERS = 1.1, 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--lams", type=float, nargs="+", default=[1e-3, 2e-3, 3e-3, 5e-3, 1e-2])
    parser.add_argument("--inners", type=int, nargs="+", default=[5, 8, 10])
    parser.add_argument("--kinds", nargs="+", default=["fourier", "hadamard"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "firenet_parameters.json"
    payload = json.loads(path.read_text()) if path.exists() else {}
    payload.update({"machine": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "sparse_target": SPARSE_TARGET, "noisy_factor": NOISY_FACTOR})
    cases = payload.setdefault("cases", {})
    grid = [(k, n, lam, p) for k in args.kinds for n in args.sizes for lam in args.lams
            for p in args.inners]
    floors = payload.setdefault("floors", {})
    for kind, size, lam, p in tqdm(grid, desc="lam x p grid"):
        key = f"{kind}/{size}/{lam:g}/{p}"
        if key in cases:
            continue
        op = operator(kind, size)
        x = image("sparse", size)
        errs = firenet_curve(measurements(op, x, False), op, x, lam, p, SPARSE_LAYERS)
        case = {"sparse_layers": first_reaching(errs, SPARSE_TARGET, p),
                "sparse_final": errs[-1], "noisy_layers": {}, "noisy_final": {}}
        for name in NATURAL:
            x = image(name, size)
            y = measurements(op, x, True)
            fkey = f"{kind}/{size}/{lam:g}/{name}"
            if fkey not in floors:
                floors[fkey] = floor(y, op, x, lam)
            errs = firenet_curve(y, op, x, lam, p, NOISY_LAYERS)
            case["noisy_layers"][name] = first_reaching(errs, NOISY_FACTOR * floors[fkey], p)
            case["noisy_final"][name] = errs[-1]
        cases[key] = case
        write_json(path, payload)

    print(f"\nlayers to 1e-5 (sparse) | layers to within 10% of the floor (noisy, worst of "
          f"{', '.join(NATURAL)}); '-' = stalls\n")
    print(f"{'operator':<9} {'size':>4} {'lam':>7} {'p':>3} {'sparse':>7} {'noisy':>6}")
    for kind, size, lam, p in grid:
        c = cases[f"{kind}/{size}/{lam:g}/{p}"]
        noisy = list(c["noisy_layers"].values())
        worst = "-" if any(v is None for v in noisy) else str(max(noisy))
        sparse = "-" if c["sparse_layers"] is None else str(c["sparse_layers"])
        print(f"{kind:<9} {size:>4} {lam:>7g} {p:>3} {sparse:>7} {worst:>6}")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
