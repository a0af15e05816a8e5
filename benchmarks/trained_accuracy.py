"""Accuracy of the shipped networks against tuned classical methods, on held-out images of their
training distributions.

Usage::

    python benchmarks/trained_accuracy.py [--methods itnet_mr128 unet_fourier128 ... | PATHS]
        [--test 50] [--tune 16] [--classical fista tv firenet] [--out benchmarks/results]

The networks are grouped by problem: the operator and the training data of their configs (and
the run seed, which fixes the held-out stream). For each problem, on ``--test`` held-out images
(a seed stream never used in training or validation) measured with the config's relative noise,
it reports mean PSNR / SSIM of

* the zero-filled / adjoint-based reconstruction ``A_dagger y`` (real part);
* l1-wavelet FISTA (1000 iterations; Haar and db4), TV (Chambolle-Pock) and FIRENET (its default
  sparsifier and layers), each with ``lam`` tuned on ``--tune`` validation images: a geometric
  search with ratio 2 from the method's default that walks towards the better side until the
  best ``lam`` is an interior point (at most 12 values), then refined to ratio ``sqrt(2)``;
* each network, with its gap to the best classical method of its problem (the tuned method of
  highest mean held-out PSNR), the gap's bootstrap 95% interval and the fraction of images on
  which the network wins.

Prints a table per problem and a summary (the README's accuracy table) and writes
``trained_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _results import write_json

from stablerecon.metrics import psnr, ssim
from stablerecon.nets import FIRENet
from stablerecon.solvers import SparseReconstructor
from stablerecon.sparsity import Wavelet
from stablerecon.training import TrainingData, available_pretrained, pretrained_path, read_checkpoint
from stablerecon.training.data import VALIDATION_STREAM

#: Starting ``lam`` of each classical method's search (SparseReconstructor's ``lam`` is relative
#: to the measurements' root-mean-square, so one start serves every operator).
STARTS = {"fista": 2e-3, "tv": 6e-3, "firenet": 1e-3}
LABELS = {"fista": "l1-{wavelet} FISTA", "tv": "TV", "firenet": "FIRENET"}
FISTA_ITERATIONS = 1000  # enough for the smallest lam of the searches
MAX_TRIES = 12


@torch.no_grad()
def _scores(method, y: torch.Tensor, x: torch.Tensor, op,
            chunk: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    outs = [method(y[i:i + chunk], op) for i in range(0, y.shape[0], chunk)]
    x_hat = torch.cat(outs).real.to(x.dtype)
    return psnr(x_hat, x, data_range=1.0), ssim(x_hat, x, data_range=1.0)


def _classical(kind: str, lam: float, op, wavelet: str = "haar"):
    size = int(op.in_shape[-1])
    if kind == "firenet":
        return FIRENet(op, lam=lam)
    if kind == "tv":
        return SparseReconstructor("tv", op, lam=lam)
    return SparseReconstructor("fista", op, lam=lam, sparsifier=Wavelet(wavelet, size=size),
                               max_iter=FISTA_ITERATIONS)


def tune(kind: str, op, x: torch.Tensor, y: torch.Tensor, wavelet: str = "haar",
         log=print) -> tuple[float, float, list[tuple[float, float]], bool]:
    """``(best lam, its validation PSNR, every (lam, PSNR) tried, best lam interior)``: a
    geometric search with ratio 2 from ``STARTS[kind]`` towards the better side."""
    tried: dict[float, float] = {}

    def score(lam: float) -> float:
        if lam not in tried:
            p, _ = _scores(_classical(kind, lam, op, wavelet), y, x, op)
            tried[lam] = float(p.mean())
            log(f"    tune {kind:<8} {wavelet if kind == 'fista' else '':<5} lam={lam:<10.3g} "
                f"validation PSNR {tried[lam]:.2f}")
        return tried[lam]

    lam = STARTS[kind]
    step = 2.0 if score(2.0 * lam) > score(lam) else 0.5
    while len(tried) < MAX_TRIES:
        best = max(tried, key=tried.get)
        nxt = best * step
        if nxt in tried and best / step in tried:
            break  # interior optimum
        if nxt in tried:
            step = 1 / step
            nxt = best * step
            if nxt in tried:
                break
        score(nxt)
    best = max(tried, key=tried.get)
    interior = best * 2 in tried and best / 2 in tried
    if interior:  # refine to ratio sqrt(2) around the optimum
        for lam in (best * 2**0.5, best / 2**0.5):
            score(lam)
        best = max(tried, key=tried.get)
    return best, tried[best], sorted(tried.items()), interior


def _bootstrap_ci(diff: np.ndarray, seed: int = 0, draws: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(draws, len(diff)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def _problem_key(cfg) -> str:
    data = cfg.data.model_dump(exclude={"jitter", "n_val"})
    return json.dumps({"operator": cfg.operator.model_dump(), "data": data, "seed": cfg.seed}, sort_keys=True)


def _default_methods() -> list[str]:
    """Every shipped network trained on a distribution of images (not the kernel experiment's
    fixed pairs)."""
    return [name for name in available_pretrained()
            if read_checkpoint(pretrained_path(name)).config.data.pair is None]


def evaluate_problem(checkpoints: dict, args, log=print) -> dict:
    """The classical methods tuned and every network of one problem evaluated."""
    cfg = next(iter(checkpoints.values())).config
    op = cfg.operator.build()
    data = TrainingData(cfg.data, op, seed=cfg.seed)
    noise = cfg.data.noise
    x_tune, y_tune = data.heldout(args.tune, noise=noise, stream=VALIDATION_STREAM)
    x_test, y_test = data.heldout(args.test, noise=noise)
    rows: dict[str, dict] = {}

    def record(label: str, method, extra: dict) -> None:
        t0 = time.perf_counter()
        p, s = _scores(method, y_test, x_test, op)
        rows[label] = {"psnr": float(p.mean()), "ssim": float(s.mean()), "psnr_per_image": p.tolist(),
                       "seconds_per_image": (time.perf_counter() - t0) / args.test, **extra}
        log(f"  {label:<28} PSNR {rows[label]['psnr']:6.2f} dB  SSIM {rows[label]['ssim']:.4f}")

    record("A_dagger", lambda y, op: op.A_dagger(y).real, {"kind": "adjoint"})
    for kind in args.classical:
        for wavelet in (["haar", "db4"] if kind == "fista" else ["haar"]):
            lam, val, tried, interior = tune(kind, op, x_tune, y_tune, wavelet, log=log)
            record(LABELS[kind].format(wavelet=wavelet), _classical(kind, lam, op, wavelet),
                   {"kind": kind, "classical": True, "lam": lam, "wavelet": wavelet, "validation_psnr": val,
                    "lam_interior": interior, "tried": tried})
    classical = {k: v for k, v in rows.items() if v.get("classical")}
    best_label = max(classical, key=lambda k: classical[k]["psnr"])
    best = np.asarray(rows[best_label]["psnr_per_image"])
    for name, ck in checkpoints.items():
        method = ck.build(op)
        record(name, method, {"kind": "network", "checkpoint": str(ck.path),
                              "architecture": ck.meta["architecture"],
                              "train_seconds": ck.meta.get("seconds")})
        mine = np.asarray(rows[name]["psnr_per_image"])
        rows[name]["gap_to_best_classical"] = float((mine - best).mean())
        rows[name]["gap_ci95"] = _bootstrap_ci(mine - best)
        rows[name]["wins_over_best_classical"] = float((mine > best).mean())
    return {"operator": cfg.operator.model_dump(), "label": cfg.operator.label(),
            "data": cfg.data.model_dump(), "seed": cfg.seed, "noise": noise, "best_classical": best_label,
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=None,
                        help="shipped network names or checkpoint paths (default: every shipped network "
                             "trained on a distribution of images)")
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--tune", type=int, default=16)
    parser.add_argument("--classical", nargs="+", default=list(STARTS), choices=list(STARTS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)

    problems: dict[str, dict] = {}
    for name in args.methods or _default_methods():
        path = pretrained_path(name) if name in available_pretrained() else Path(name)
        ck = read_checkpoint(path)
        problems.setdefault(_problem_key(ck.config), {})[ck.config.name] = ck

    results = []
    for checkpoints in problems.values():
        cfg = next(iter(checkpoints.values())).config
        print(f"\n{cfg.operator.label()}, {cfg.data.source} images, noise {cfg.data.noise}: "
              f"{args.test} held-out images, lam tuned on {args.tune}", flush=True)
        results.append(evaluate_problem(checkpoints, args, log=lambda s: print(s, flush=True)))

    summary = []
    for problem in results:
        best = problem["rows"][problem["best_classical"]]
        for name, row in problem["rows"].items():
            if row.get("kind") != "network":
                continue
            summary.append({"network": name, "problem": problem["label"], "data": problem["data"]["source"],
                            "psnr": row["psnr"], "best_classical": problem["best_classical"],
                            "best_classical_lam": best["lam"], "best_classical_psnr": best["psnr"],
                            "gap": row["gap_to_best_classical"], "gap_ci95": row["gap_ci95"],
                            "wins": row["wins_over_best_classical"]})
    payload = {"benchmark": "trained_accuracy", "machine": platform.platform(),
               "threads": torch.get_num_threads(), "test_images": args.test, "tune_images": args.tune,
               "problems": results, "summary": summary}
    write_json(args.out / "trained_accuracy.json", payload)

    print(f"\nheld-out PSNR (dB, mean of {args.test} images), each network against the best tuned classical "
          f"method of its problem")
    print(f"{'network':<26}{'problem':<44}{'data':<10}{'PSNR':>7}  {'best classical':<24}{'PSNR':>7}"
          f"{'gap':>8}  {'95% interval':<16}{'wins':>6}")
    for s in summary:
        label = f"{s['best_classical']} ({s['best_classical_lam']:.2g})"
        ci = f"[{s['gap_ci95'][0]:+.2f}, {s['gap_ci95'][1]:+.2f}]"
        print(f"{s['network']:<26}{s['problem']:<44}{s['data']:<10}{s['psnr']:7.2f}  {label:<24}"
              f"{s['best_classical_psnr']:7.2f}{s['gap']:+8.2f}  {ci:<16}{s['wins']:6.0%}")
    print(f"wrote {args.out / 'trained_accuracy.json'}")


if __name__ == "__main__":
    main()
