"""FIRENET given inexact input (y + e, A + E): measured change against its proved bound.

Usage::

    python benchmarks/firenet_inexact.py [--budgets 1e-4 1e-3 1e-2 5e-2] [--images 2]
        [--steps 10] [--draws 3] [--tasks FIRENET unet_fourier128 itnet_fourier128 TV]
        [--out benchmarks/results]

The problem is the shipped networks' training operator (``unet_fourier128.yaml``: 25%
variable-density Fourier points at 128 x 128) and held-out random-ellipse phantoms with 1%
noise (their generator, a stream never used in training). For every relative budget ``r``,
each method ``Phi`` is handed ``(y + e, A_E)`` with ``||e|| = r ||y||`` and
``||A_E - A|| = r ||A||`` (``A_E`` from the ``additive`` family, rank 1: the mask samples points,
so ``kspace_jitter`` does not apply), and the output change ``||Phi(y + e, A_E) - Phi(y, A)||``
is measured

* at random: the largest over ``--draws`` Gaussian ``e`` and ``family.random`` operators;
* in the worst case found: ``--steps`` of projected gradient ascent over ``(e, theta)`` through
  the method by autograd (:func:`stablerecon.nets.worst_case_inexact`);

and, for FIRENET (its defaults, recorded in the JSON), compared with the bound of
:func:`stablerecon.nets.firenet_bound` at the pair found (and at the nominal budget). Methods:
FIRENET; FIRENET with steps ``tau = sigma = 0.5 / ||A||`` (``FIRENET_tau0.5``: the bound
through the Chambolle-Pock metric applies, ``tau sigma ||A||^2 < 1``); the shipped U-Net
(post-processing ``A^dagger y``; ``A^dagger`` of an ``additive`` perturbation is the nominal
one, so the U-Net never sees ``E``); the shipped ItNet (uses ``A_E`` in its data-consistency
steps); TV (Chambolle-Pock, 300 iterations). The mean relative error ``||Phi(y, A) - x|| /
||x||`` of each method is reported beside its stability.

One task per method; each is written to ``firenet_inexact.json`` as soon as it finishes
(atomically; a rerun with the same settings resumes). Prints a table and draws
``firenet_inexact.png`` (relative change against the budget, log-log).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from _results import run_tasks  # noqa: E402

from stablerecon.nets import FIRENet, firenet_bound, random_inexact, worst_case_inexact  # noqa: E402
from stablerecon.operators.perturbations import build_perturbation  # noqa: E402
from stablerecon.solvers import SparseReconstructor  # noqa: E402
from stablerecon.training import TrainingData, pretrained, pretrained_path, read_checkpoint  # noqa: E402

TASKS = ["FIRENET", "FIRENET_tau0.5", "unet_fourier128", "itnet_fourier128", "TV"]
PRESET = "unet_fourier128"


def problem(n_images: int, noise: float):
    """The shipped networks' operator, the ``additive`` family and held-out phantoms."""
    cfg = read_checkpoint(pretrained_path(PRESET)).config
    op = cfg.operator.build()
    x, y = TrainingData(cfg.data, op, seed=cfg.seed).heldout(n_images, noise=noise)
    return cfg, op, x, y


def method_of(name: str, op):
    if name == "FIRENET":
        return FIRENet(op)
    if name == "FIRENET_tau0.5":  # tau sigma ||A||^2 = 1/4 < 1: the metric bound applies
        return FIRENet(op, tau=0.5 / op.norm(), sigma=0.5 / op.norm())
    if name == "TV":
        return SparseReconstructor("tv", op)
    return pretrained(name, op)


def measure(args: argparse.Namespace, name: str) -> dict:
    torch.manual_seed(0)
    _, op, xs, ys = problem(args.images, args.noise)
    family = build_perturbation("additive", op, rank=1)
    method = method_of(name, op)
    out: dict = {"images": []}
    if isinstance(method, FIRENet):
        out["network"] = (f"lam={method.lam_for(op):.4g}, {method.restarts} x {method.inner} layers, "
                          f"{method._sparsifier_for(op)!r}")
    for i in range(args.images):
        x, y = xs[i : i + 1], ys[i : i + 1]
        with torch.no_grad():
            ref = method(y, op)
        ny, nref = float(torch.linalg.vector_norm(y)), float(torch.linalg.vector_norm(ref))
        rows = []
        for r in args.budgets:
            t0 = time.perf_counter()
            rand = random_inexact(method, y, op, family, r_y=r, r_A=r, draws=args.draws, seed=i)
            worst = worst_case_inexact(method, y, op, family, r_y=r, r_A=r, steps=args.steps, seed=i)
            row = {"r": r, "random": rand.change, "worst": worst.change,
                   "random_rel": rand.change / nref, "worst_rel": worst.change / nref,
                   "amplification": worst.change / nref / r, "e_norm": worst.e_norm,
                   "E_norm": worst.E_norm, "history": worst.history}
            if isinstance(method, FIRENet):
                nominal = firenet_bound(method, op, ny, r * ny, r * op.norm())
                at_pair = firenet_bound(method, op, ny, worst.e_norm, worst.E_norm,
                                        perturbed_norm=family(worst.theta).norm())
                row |= {"bound": nominal.bound, "bound_rel": nominal.bound / nref,
                        "bound_at_pair": at_pair.bound, "bound_linear": nominal.linear,
                        "bound_metric": nominal.metric,
                        "bound_cap": nominal.cap, "slope_y": nominal.slope_y, "slope_A": nominal.slope_A,
                        "holds": worst.change <= at_pair.bound and rand.change <= nominal.bound}
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            bound = f"  bound {row['bound_rel']:.3g}" if "bound" in row else ""
            print(f"  {name} image {i} r={r:g}: worst {row['worst_rel']:.3g} random "
                  f"{row['random_rel']:.3g} (relative){bound}  [{row['seconds']} s]", flush=True)
        err = float(torch.linalg.vector_norm(ref - x) / torch.linalg.vector_norm(x))
        out["images"].append({"y_norm": ny, "output_norm": nref, "relative_error": err, "budgets": rows})
    return out


def summary(payload: dict, budgets: list[float]) -> dict[str, list[dict]]:
    """Per method and budget: the largest relative changes over the images (and the bound)."""
    table: dict[str, list[dict]] = {}
    for name, task in payload["tasks"].items():
        rows = []
        for j, r in enumerate(budgets):
            per = [im["budgets"][j] for im in task["images"]]
            row = {"r": r, "worst_rel": max(p["worst_rel"] for p in per),
                   "random_rel": max(p["random_rel"] for p in per),
                   "error": sum(im["relative_error"] for im in task["images"]) / len(task["images"])}
            row["amplification"] = row["worst_rel"] / r
            if "bound_rel" in per[0]:  # at the worst pair found (its A_E's norm known exactly)
                row["bound_rel"] = max(p["bound_at_pair"] / im["output_norm"]
                                       for p, im in zip(per, task["images"], strict=True))
                row["bound_nominal_rel"] = max(p["bound_rel"] for p in per)
                row["holds"] = all(p["holds"] for p in per)
            rows.append(row)
        table[name] = rows
    return table


def plot(table: dict[str, list[dict]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for k, (name, rows) in enumerate(table.items()):
        r = [row["r"] for row in rows]
        color = f"C{k}"
        ax.loglog(r, [row["worst_rel"] for row in rows], "o-", color=color, label=f"{name} worst case")
        ax.loglog(r, [max(row["random_rel"], 1e-12) for row in rows], "s--", color=color, alpha=0.6,
                  label=f"{name} random")
        if "bound_rel" in rows[0]:
            ax.loglog(r, [row["bound_rel"] for row in rows], ":", color=color, lw=2.5,
                      label=f"{name} proved bound")
    rr = [rows[0]["r"], rows[-1]["r"]]
    ax.loglog(rr, rr, color="0.6", lw=1, label="change = r")
    ax.set_xlabel("relative budget r  (||e|| = r||y||, ||A_E - A|| = r||A||)")
    ax.set_ylabel("||Phi(y+e, A_E) - Phi(y, A)|| / ||Phi(y, A)||")
    ax.set_title("Inexact input, 25% Fourier at 128x128")
    ax.legend(fontsize=6.5, ncol=2, loc="lower right")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2, 5e-2])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=TASKS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    t0 = time.perf_counter()
    path = args.out / "firenet_inexact.json"
    tasks = {name: (lambda a, name=name: measure(a, name)) for name in TASKS}
    payload = run_tasks(path, args, tasks)
    table = summary(payload, args.budgets)
    plot(table, args.out / "firenet_inexact.png")

    print("\nlargest relative change ||Phi(y+e, A_E) - Phi(y, A)|| / ||Phi(y, A)|| over "
          f"{args.images} held-out phantoms (worst case: {args.steps} ascent steps; random: "
          f"{args.draws} draws)")
    print(f"{'method':<18}{'error':>7}{'r':>8}{'worst':>11}{'random':>11}{'worst/r':>9}{'bound':>11}"
          f"{'budget':>9}{'holds':>7}")
    for name, rows in table.items():
        for row in rows:
            bound = (f"{row['bound_rel']:11.3g}{row['bound_nominal_rel']:9.3g}" if "bound_rel" in row
                     else f"{'-':>11}{'-':>9}")
            holds = f"{str(row['holds']):>7}" if "holds" in row else f"{'-':>7}"
            print(f"{name:<18}{row['error']:7.3f}{row['r']:8g}{row['worst_rel']:11.3g}{row['random_rel']:11.3g}"
                  f"{row['amplification']:9.2f}{bound}{holds}")
    print("(error: mean relative error ||Phi(y, A) - x|| / ||x||; worst, random, bound: relative to "
          "||Phi(y, A)||; worst/r: amplification; bound: firenet_bound at the worst pair found, "
          "budget: at the budget with ||A_E||'s estimate unknown)")
    for name in ("FIRENET", "FIRENET_tau0.5"):
        fire = payload["tasks"].get(name)
        if fire:
            b, im = fire["images"][0]["budgets"][0], fire["images"][0]
            print(f"{name} ({fire['network']}): bound slopes (image 0) {b['slope_y']:.3g} per unit "
                  f"||e||, {b['slope_A']:.3g} per unit ||E||; cap {b['bound_cap']:.3g} "
                  f"(= {b['bound_cap'] / im['output_norm']:.3g} ||Phi(y, A)||)")
    print(f"wrote {args.out / 'firenet_inexact.png'}; wall time {time.perf_counter() - t0:.0f} s "
          "(tasks already in the JSON not rerun)")


if __name__ == "__main__":
    main()
