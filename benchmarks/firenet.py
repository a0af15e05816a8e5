"""FIRENET against plain Chambolle-Pock: error versus layers in both regimes, and wall time.

Usage::

    python benchmarks/firenet.py [--size 128] [--plain 1000] [--out benchmarks/results]

Measures, with the problems of ``firenet_problems.py``:

1. **sparse regime** (exactly Haar-sparse image, noiseless; Fourier and Walsh-Hadamard, 25%):
   relative error after each FIRENET block (``p = 5``, ``lam = 1e-2``, as in the acceptance
   test) and of plain CP (ergodic average and last iterate) up to ``--plain`` iterations; the
   layers FIRENET needs for eps in {1e-1, ..., 1e-5} with a straight-line fit of layers
   against log10(1/eps) (the theory predicts O(|log eps|) layers);
2. **noisy regime** (Shepp-Logan, random ellipses, ``camera``; 2% noise; Fourier): FIRENET
   in its Haar setting (``HAAR_SETTING``), the error floor (the square-root LASSO minimiser's error), the
   layers FIRENET and the iterations plain CP need to come within 10% of it;
3. **wall time** of one FIRENET forward (default layers) at 128 and 256 pixels, against the
   same number of plain CP steps in the same run (the ratio is the restart overhead).

Writes ``firenet.json`` and ``firenet.png`` (error-versus-layers curves) and prints tables.
"""

from __future__ import annotations

import argparse
import math
import platform
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from firenet_problems import (  # noqa: E402
    NATURAL,
    firenet_curve,
    first_reaching,
    floor,
    image,
    measurements,
    operator,
    plain_curve,
)
from operators import paired_times  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import stablerecon as sr  # noqa: E402
from stablerecon.files import write_json  # noqa: E402

SPARSE_LAM, SPARSE_P, SPARSE_LAYERS = 1e-2, 5, 100
# the Haar setting this study measures (FIRENet's defaults until issue 21, which moved them to db4
# wavelets, the pivotal lam and 7 x 6 layers: see benchmarks/firenet_natural.py)
HAAR_SETTING = {"lam": 2e-3, "restarts": 12, "inner": 8}
EPSILONS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]


def sparse_regime(size: int, plain: int) -> dict:
    out = {}
    for kind in tqdm(["fourier", "hadamard"], desc="sparse regime"):
        op, x = operator(kind, size), image("sparse", size)
        y = measurements(op, x, False)
        fire = firenet_curve(y, op, x, SPARSE_LAM, SPARSE_P, SPARSE_LAYERS)
        ergodic, last = plain_curve(y, op, x, SPARSE_LAM, plain)
        layers = [first_reaching(fire, eps, SPARSE_P) for eps in EPSILONS]
        fit = {}
        if all(v is not None for v in layers):
            t = np.log10(1.0 / np.asarray(EPSILONS))
            slope, intercept = np.polyfit(t, layers, 1)
            r2 = float(np.corrcoef(t, layers)[0, 1] ** 2)
            fit = {"layers_per_decade": float(slope), "intercept": float(intercept), "r2": r2}
        out[kind] = {"firenet": fire, "plain_ergodic": ergodic, "plain_last": last,
                     "layers_for_eps": dict(zip([f"{e:g}" for e in EPSILONS], layers, strict=True)),
                     "fit": fit}
    return out


def noisy_regime(size: int, plain: int) -> dict:
    op = operator("fourier", size)
    net = sr.nets.FIRENet(op, sr.sparsity.Wavelet("haar", size=size), **HAAR_SETTING)
    out = {}
    for name in tqdm(NATURAL, desc="noisy regime"):
        x = image(name, size)
        y = measurements(op, x, True)
        target = floor(y, op, x, net.lam)
        fire = firenet_curve(y, op, x, net.lam, net.inner, net.layers)
        ergodic, last = plain_curve(y, op, x, net.lam, plain)
        out[name] = {
            "floor": target, "firenet": fire, "plain_ergodic": ergodic, "plain_last": last,
            "firenet_layers": first_reaching(fire, 1.1 * target, net.inner),
            "plain_ergodic_iterations": first_reaching(ergodic, 1.1 * target, 1),
            "plain_last_iterations": first_reaching(last, 1.1 * target, 1),
            "zero_filled": float(sr.metrics.relative_error(op.A_dagger(y).real, x)),
        }
    out["parameters"] = {"lam": net.lam, "inner": net.inner, "restarts": net.restarts}
    return out


def wall_times(sizes: list[int], repeats: int) -> dict:
    out = {}
    for size in sizes:
        op, x = operator("fourier", size), image("camera", size)
        y = measurements(op, x, True)
        wav = sr.sparsity.Wavelet("haar", size=size)
        net = sr.nets.FIRENet(op, wav, **HAAR_SETTING)

        def firenet(net=net, y=y) -> None:
            with torch.no_grad():
                net(y)

        def baseline(y=y, op=op, wav=wav, steps=net.layers, lam=net.lam) -> None:
            with torch.no_grad():
                sr.solvers.primal_dual(y, op, wav, lam, max_iter=steps)

        t_fire, t_base = paired_times(firenet, baseline, repeats)
        out[str(size)] = {"layers": net.layers, "firenet_s": t_fire, "plain_cp_s": t_base,
                          "ratio": t_fire / t_base}
    return out


def figure(sparse: dict, noisy: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for kind, style, marker in (("fourier", "C0", "o"), ("hadamard", "C1", "s")):
        r = sparse[kind]
        layers = SPARSE_P * np.arange(1, len(r["firenet"]) + 1)
        ax.semilogy(layers, r["firenet"], marker=marker, ms=4, ls="-", color=style, label=f"FIRENET, {kind}")
        its = np.arange(1, len(r["plain_ergodic"]) + 1)
        ax.semilogy(its, r["plain_ergodic"], "--", color=style, label=f"plain CP (ergodic), {kind}")
        ax.semilogy(its, r["plain_last"], ":", color=style, label=f"plain CP (last), {kind}")
    ax.set(xscale="log", xlabel="layers / iterations", ylabel="relative error to the truth",
           title="sparse regime: exactly Haar-sparse, noiseless")
    ax.legend(fontsize=7)
    ax = axes[1]
    inner = noisy["parameters"]["inner"]
    for i, name in enumerate(NATURAL):
        r = noisy[name]
        layers = inner * np.arange(1, len(r["firenet"]) + 1)
        ax.plot(layers, np.asarray(r["firenet"]) / r["floor"], "o-", color=f"C{i}", label=f"FIRENET, {name}")
        its = np.arange(1, len(r["plain_ergodic"]) + 1)
        ax.plot(its, np.asarray(r["plain_ergodic"]) / r["floor"], "--", color=f"C{i}",
                label=f"plain CP (ergodic), {name}")
    ax.axhline(1.1, color="k", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", ylim=(0.5, 20), xlabel="layers / iterations",
           ylabel="error / floor", title="noisy regime: 2% noise, Fourier 25%")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--plain", type=int, default=1000, help="plain CP iterations")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    sparse = sparse_regime(args.size, args.plain)
    noisy = noisy_regime(args.size, args.plain)
    times = wall_times([128, 256], args.repeats)

    print(f"\nsparse regime ({args.size} px, p = {SPARSE_P}, lam = {SPARSE_LAM:g}): layers to reach eps")
    print(f"{'operator':<9} " + " ".join(f"{e:>6g}" for e in EPSILONS) + "  layers/decade    R^2"
          f"  plain CP ergodic @{args.plain}")
    for kind in ("fourier", "hadamard"):
        r = sparse[kind]
        cells = " ".join(f"{str(v) if v is not None else '-':>6}" for v in r["layers_for_eps"].values())
        fit = r["fit"]
        slope = f"{fit['layers_per_decade']:>13.1f}  {fit['r2']:.3f}" if fit else f"{'-':>13}  {'-':>5}"
        print(f"{kind:<9} {cells}  {slope}  {r['plain_ergodic'][-1]:.2e}")

    p = noisy["parameters"]
    print(f"\nnoisy regime ({args.size} px, 2% noise, FIRENET lam = {p['lam']:g}, p = {p['inner']}): "
          "to within 10% of the floor")
    print(f"{'image':<12} {'floor':>7} {'zero-filled':>11} {'FIRENET layers':>14} "
          f"{'plain ergodic':>13} {'plain last':>10}")
    for name in NATURAL:
        r = noisy[name]
        cells = [r["firenet_layers"], r["plain_ergodic_iterations"], r["plain_last_iterations"]]
        cells = [str(v) if v is not None else f">{args.plain}" for v in cells]
        print(f"{name:<12} {r['floor']:>7.4f} {r['zero_filled']:>11.4f} {cells[0]:>14} {cells[1]:>13} "
              f"{cells[2]:>10}")

    print("\nwall time of one forward (no autograd), against the same number of plain CP steps")
    print(f"{'size':>5} {'layers':>6} {'FIRENET (s)':>11} {'plain CP (s)':>12} {'ratio':>6}")
    for size, r in times.items():
        print(f"{size:>5} {r['layers']:>6} {r['firenet_s']:>11.3f} {r['plain_cp_s']:>12.3f} "
              f"{r['ratio']:>6.2f}")

    payload = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "size": args.size, "sparse": sparse,
               "noisy": noisy, "wall_time": times}
    write_json(args.out / "firenet.json", payload)
    figure(sparse, noisy, args.out / "firenet.png")
    print(f"\nwrote {args.out / 'firenet.json'} and {args.out / 'firenet.png'}")
    if not all(math.isfinite(v["ratio"]) for v in times.values()):
        raise SystemExit("non-finite timing")


if __name__ == "__main__":
    main()
