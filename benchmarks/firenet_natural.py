"""FIRENET on natural images: the lam rule and the sparsifier chosen on validation images,
checked on held-out photographs and phantoms against zero-filling, l1-wavelet and TV.

Usage::

    python benchmarks/firenet_natural.py [--tasks validation table timing] [--size 128]
        [--rates 0.15 0.25] [--noise 0.02] [--threads 1] [--out benchmarks/results]

Variable-density Fourier sampling (mask seed 0), complex Gaussian noise of ``--noise`` relative
level (seed 1), ``--size`` pixels. A strict split (Colbrook, Antun, Hansen, PNAS 2022 for
FIRENET; the rule is :func:`stablerecon.solvers.pivotal_lam`):

1. **validation** -- on ``VALIDATION`` only (camera, astronaut, clock, cell, grass, text): the
   mean PSNR gain over zero-filling of FIRENET (its default layers) for every wavelet family
   and factor ``kappa`` of ``lam = kappa * sqrt(2 ln N / N)``, at each rate; the best fixed
   ``lam`` at 64 and 256 pixels (does ``lam`` follow ``sqrt(2 ln N / N)``?) and at 1% and 5%
   noise (is it noise-independent?). The wavelet is the best at ``--size``, ``kappa`` the best
   mean over all these settings. This chose FIRENET's defaults (db4, ``kappa = 0.2``).
2. **table** -- on ``TEST`` (eight photographs never used for a choice) and two phantoms:
   PSNR and SSIM (clamped to [0, 1]) of zero-filling, l1-wavelet (FISTA), TV (both with their
   defaults), FIRENET with its old defaults (Haar, ``lam = 2e-3``, 12 x 8 layers), FIRENET with
   its new defaults (no ground truth anywhere), and FIRENET tuned by an *oracle* (``lam`` per
   image from a grid, scored against the truth: an upper bound, not a method).
3. **timing** -- seconds per reconstruction of one image at ``--size`` (forward, and forward +
   backward as in the audit's worst-case search), old defaults against new, in the same run.

Each task is written to ``firenet_natural.json`` as soon as it finishes (a rerun with the same
settings skips finished tasks). Prints the tables.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from _results import run_tasks

import stablerecon as sr
from stablerecon.solvers import SparseReconstructor, pivotal_lam

VALIDATION = ["camera", "astronaut", "clock", "cell", "grass", "text"]
TEST = ["moon", "coins", "brick", "cat", "coffee", "rocket", "page", "immunohistochemistry"]
PHANTOMS = ["shepp_logan", "ellipses"]
WAVELETS = ["haar", "db2", "db4", "sym4", "db8"]
KAPPAS = [0.1, 0.15, 0.2, 0.3, 0.4]
ORACLE_KAPPAS = [0.05, 0.07, 0.1, 0.14, 0.2, 0.28, 0.4, 0.56, 0.8]
OLD = {"lam": 2e-3, "restarts": 12, "inner": 8}  # the defaults before issue 21 (Haar wavelets)
TASKS = ["validation", "table", "timing"]


def image(name: str, size: int) -> torch.Tensor:
    if name == "shepp_logan":
        return sr.data.shepp_logan(size)
    if name == "ellipses":
        return sr.data.ellipses(1, size, seed=0)
    return sr.data.image(name, size=size)


def problem(x: torch.Tensor, rate: float,
            noise: float) -> tuple[sr.operators.SubsampledFourier, torch.Tensor]:
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(x.shape[-1], rate, seed=0))
    return op, sr.operators.noise.add_gaussian(op.A(x), rel=noise, seed=1)


def scores(x_hat: torch.Tensor, x: torch.Tensor) -> tuple[list[float], list[float]]:
    x_hat = x_hat.real.clamp(0, 1)
    return (sr.metrics.psnr(x_hat, x, data_range=1.0).tolist(),
            sr.metrics.ssim(x_hat, x, data_range=1.0).tolist())


@torch.no_grad()
def gain_grid(x: torch.Tensor, rate: float, noise: float, wavelets: list[str],
              kappas: list[float]) -> dict[str, float]:
    """Mean PSNR gain over zero-filling of FIRENET (default layers) on the batch ``x``."""
    op, y = problem(x, rate, noise)
    zf = statistics.fmean(scores(op.A_dagger(y), x)[0])
    n = x.shape[-1] * x.shape[-2]
    out = {}
    for wavelet in wavelets:
        net = sr.nets.FIRENet(op, sr.sparsity.Wavelet(wavelet, size=x.shape[-1]))
        for kappa in kappas:
            net.lam = pivotal_lam(n, kappa)
            out[f"{wavelet}/{kappa:g}"] = statistics.fmean(scores(net(y), x)[0]) - zf
    return out


def task_validation(args: argparse.Namespace) -> dict:
    x = torch.cat([image(name, args.size) for name in VALIDATION])
    grid = {f"{rate:g}": gain_grid(x, rate, args.noise, WAVELETS, KAPPAS) for rate in args.rates}
    mean = {key: statistics.fmean(g[key] for g in grid.values()) for key in next(iter(grid.values()))}
    best = max(mean, key=mean.__getitem__)
    wavelet = best.split("/")[0]
    sizes = {}
    for size in (64, 256):
        xs = torch.cat([image(name, size) for name in VALIDATION])
        gains = {f"{rate:g}": gain_grid(xs, rate, args.noise, [wavelet], KAPPAS) for rate in args.rates}
        keys = gains[f"{args.rates[0]:g}"]
        sizes[str(size)] = {k: statistics.fmean(g[k] for g in gains.values()) for k in keys}
    noises = {f"{level:g}": gain_grid(x, args.rates[-1], level, [wavelet], KAPPAS) for level in (0.01, 0.05)}
    # kappa: the best mean over every validation setting (both rates at --size, 64 and 256 pixels,
    # 1% and 5% noise) for the chosen wavelet; at --size alone 0.15 and 0.2 tie (within 0.01 dB)
    settings = [{k.split("/")[1]: mean[k] for k in mean if k.startswith(wavelet + "/")}]
    settings += [{k.split("/")[1]: g[k] for k in g} for g in [*sizes.values(), *noises.values()]]
    overall = {k: statistics.fmean(st[k] for st in settings) for k in settings[0]}
    chosen = f"{wavelet}/{max(overall, key=overall.__getitem__)}"
    return {"images": VALIDATION, "grid": grid, "mean": mean, "best": best, "sizes": sizes, "noises": noises,
            "overall": overall, "chosen": chosen}


def reconstructions(op: sr.operators.SubsampledFourier, y: torch.Tensor, x: torch.Tensor) -> dict:
    """Scores of every method of the table on one image."""
    haar = sr.sparsity.Wavelet("haar", size=x.shape[-1])
    methods = {
        "zero-filled": lambda: op.A_dagger(y),
        "l1-wavelet (FISTA)": lambda: SparseReconstructor("fista", op)(y),
        "TV": lambda: SparseReconstructor("tv", op)(y),
        "FIRENET old defaults": lambda: sr.nets.FIRENet(op, haar, **OLD)(y),
        "FIRENET new defaults": lambda: sr.nets.FIRENet(op)(y),
    }
    out = {}
    for name, run in methods.items():
        psnr, ssim = scores(run(), x)
        out[name] = {"psnr": psnr[0], "ssim": ssim[0]}
    net, n = sr.nets.FIRENet(op), x.shape[-1] * x.shape[-2]
    best: dict = {"psnr": -math.inf}
    for kappa in ORACLE_KAPPAS:
        net.lam = pivotal_lam(n, kappa)
        psnr, ssim = scores(net(y), x)
        if psnr[0] > best["psnr"]:
            best = {"psnr": psnr[0], "ssim": ssim[0], "lam": net.lam, "kappa": kappa}
    out["FIRENET tuned (oracle)"] = best
    return out


def task_table(args: argparse.Namespace) -> dict:
    rows: dict[str, dict] = {}
    for rate in args.rates:
        for name in TEST + PHANTOMS:
            x = image(name, args.size)
            op, y = problem(x, rate, args.noise)
            with torch.no_grad():
                rows[f"{rate:g}/{name}"] = reconstructions(op, y, x)
            row = rows[f"{rate:g}/{name}"]
            print(f"  {rate:g} {name}: " + ", ".join(f"{k} {v['psnr']:.2f}" for k, v in row.items()))
    return {"test": TEST, "phantoms": PHANTOMS, "rows": rows}


def _seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def task_timing(args: argparse.Namespace) -> dict:
    x = image("camera", args.size)
    op, y = problem(x, args.rates[-1], args.noise)
    nets = {"old": sr.nets.FIRENet(op, sr.sparsity.Wavelet("haar", size=args.size), **OLD),
            "new": sr.nets.FIRENet(op)}
    out: dict[str, dict] = {}
    for key, net in nets.items():
        def backward(net=net) -> None:
            e = torch.zeros_like(y, requires_grad=True)
            torch.linalg.vector_norm(net(y + e)).backward()
        with torch.no_grad():
            forward = _seconds(lambda net=net: net(y), args.repeats)
        out[key] = {"layers": net.layers, "forward_s": forward,
                    "backward_s": _seconds(backward, args.repeats)}
    out["ratio_forward"] = out["new"]["forward_s"] / out["old"]["forward_s"]
    out["ratio_backward"] = out["new"]["backward_s"] / out["old"]["backward_s"]
    return out


def print_tables(payload: dict, args: argparse.Namespace) -> None:
    tasks = payload["tasks"]
    if "validation" in tasks:
        v = tasks["validation"]
        print(f"\nvalidation ({', '.join(v['images'])}): mean PSNR gain over zero-filling [dB], "
              f"FIRENET, lam = kappa sqrt(2 ln N / N), mean over rates {args.rates}")
        print(f"{'wavelet':<8}" + "".join(f"{'k=' + format(k, 'g'):>8}" for k in KAPPAS))
        for w in WAVELETS:
            print(f"{w:<8}" + "".join(f"{v['mean'][f'{w}/{k:g}']:>+8.2f}" for k in KAPPAS))
        print(f"best at {args.size}: {v['best']}")
        for label, block in [("size", v["sizes"]), ("noise", v["noises"])]:
            for key, gains in block.items():
                print(f"  {label} {key}: "
                      + ", ".join(f"k={k.split('/')[1]} {g:+.2f}" for k, g in gains.items()))
        print("  mean over all validation settings: "
              + ", ".join(f"k={k} {g:+.2f}" for k, g in v["overall"].items()))
        print(f"chosen: {v['chosen']}")
    if "table" in tasks:
        rows = tasks["table"]["rows"]
        methods = list(next(iter(rows.values())))
        short = ["ZF", "FISTA", "TV", "FN old", "FN new", "FN oracle"]
        for rate in args.rates:
            print(f"\nrate {rate:g}, noise {args.noise:g}, {args.size} x {args.size}: PSNR [dB] / SSIM")
            print(f"{'image':<21}" + "".join(f"{s:>14}" for s in short))
            for name in TEST + PHANTOMS:
                r = rows[f"{rate:g}/{name}"]
                print(f"{name:<21}" + "".join(f"{r[m]['psnr']:>8.2f}/{r[m]['ssim']:.3f}" for m in methods))
            for label, group in [("mean natural", TEST), ("mean phantoms", PHANTOMS)]:
                cells = [rows[f"{rate:g}/{n}"] for n in group]
                print(f"{label:<21}" + "".join(f"{statistics.fmean(c[m]['psnr'] for c in cells):>8.2f}/"
                                               f"{statistics.fmean(c[m]['ssim'] for c in cells):.3f}"
                                               for m in methods))
        gain = statistics.fmean(rows[f"{rate:g}/{n}"]["FIRENET new defaults"]["psnr"]
                                - rows[f"{rate:g}/{n}"]["zero-filled"]["psnr"]
                                for rate in args.rates for n in TEST)
        print(f"\nFIRENET new defaults - zero-filled, mean over the natural test images and rates: "
              f"{gain:+.2f} dB")
    if "timing" in tasks:
        t = tasks["timing"]
        print(f"\ntime per reconstruction at {args.size} x {args.size} (median of {args.repeats}): old "
              f"{t['old']['layers']} layers Haar {t['old']['forward_s'] * 1e3:.0f} ms forward, "
              f"{t['old']['backward_s'] * 1e3:.0f} ms forward+backward; new {t['new']['layers']} layers db4 "
              f"{t['new']['forward_s'] * 1e3:.0f} / {t['new']['backward_s'] * 1e3:.0f} ms; ratio new/old "
              f"{t['ratio_forward']:.2f} (forward), {t['ratio_backward']:.2f} (forward+backward)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=TASKS)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.15, 0.25])
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    payload = run_tasks(args.out / "firenet_natural.json", args,
                        {name: globals()[f"task_{name}"] for name in TASKS})
    print_tables(payload, args)


if __name__ == "__main__":
    main()
