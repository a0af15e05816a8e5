"""Accuracy of the trained networks against classical methods on held-out phantoms.

Usage::

    python benchmarks/trained_accuracy.py [--methods unet_fourier128 itnet_fourier128 | PATHS]
        [--test 50] [--tune 16] [--noise 0.01] [--out benchmarks/results]

The operator and the phantom generator are those of the first trained method's config
(shipped presets: 25% variable-density Fourier at 128 x 128, random ellipses). On ``--test``
held-out phantoms (a seed stream never used in training or validation) measured with relative
noise ``--noise``, it reports mean PSNR / SSIM of

* the zero-filled reconstruction ``A^* y``;
* l1-wavelet FISTA (1000 iterations), with the wavelet (Haar, db4) and ``lam`` tuned on
  ``--tune`` validation phantoms;
* TV (Chambolle-Pock), ``lam`` tuned the same way;
* FIRENET (its default sparsifier and layers: db4, 7 x 6), ``lam`` tuned the same way;
* each trained method, with its gain over zero-filling and over tuned FISTA (mean and the
  fraction of images on which it wins).

Prints a table and writes ``trained_accuracy.json``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from _results import write_json

from stablerecon.metrics import psnr, ssim
from stablerecon.nets import FIRENet
from stablerecon.solvers import SparseReconstructor
from stablerecon.sparsity import Wavelet
from stablerecon.training import TrainingData, available_pretrained, pretrained_path, read_checkpoint

GRIDS = {
    "fista": [1e-3, 2e-3, 5e-3, 1e-2, 2e-2],
    "tv": [3e-3, 6e-3, 1e-2, 2e-2],
    "firenet": [5e-4, 1e-3, 2e-3, 5e-3],
}
FISTA_ITERATIONS = 1000  # enough for the smallest lam of the grid


@torch.no_grad()
def _scores(method, y: torch.Tensor, x: torch.Tensor, op,
            chunk: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    outs = [method(y[i:i + chunk], op) for i in range(0, y.shape[0], chunk)]
    x_hat = torch.cat(outs).real
    return psnr(x_hat, x, data_range=1.0), ssim(x_hat, x, data_range=1.0)


def _classical(kind: str, lam: float, op, wavelet: str = "haar"):
    size = int(op.in_shape[-1])
    if kind == "firenet":
        return FIRENet(op, lam=lam)
    if kind == "tv":
        return SparseReconstructor("tv", op, lam=lam)
    return SparseReconstructor("fista", op, lam=lam, sparsifier=Wavelet(wavelet, size=size),
                               max_iter=FISTA_ITERATIONS)


def _presets() -> list[str]:
    """The shipped methods trained for the operator of ``unet_fourier128`` (the presets and their
    jitter variants; not the kernel-experiment networks, which train on a fixed pair)."""
    reference = read_checkpoint(pretrained_path("unet_fourier128")).config.operator
    out = []
    for name in available_pretrained():
        cfg = read_checkpoint(pretrained_path(name)).config
        if cfg.operator == reference and cfg.data.pair is None:
            out.append(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=None,
                        help="shipped method names or checkpoint paths (default: the shipped presets "
                             "for 25%% Fourier at 128 and their jitter variants)")
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--tune", type=int, default=16)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)

    names = args.methods or _presets()
    checkpoints = {}
    for name in names:
        path = pretrained_path(name) if name in available_pretrained() else Path(name)
        ck = read_checkpoint(path)
        checkpoints[ck.config.name] = ck
    first = next(iter(checkpoints.values()))
    cfg = first.config
    op = cfg.operator.build()
    data = TrainingData(cfg.data, op, seed=cfg.seed)
    x_tune, y_tune = data.heldout(args.tune, noise=args.noise, stream=1)  # the validation stream
    x_test, y_test = data.heldout(args.test, noise=args.noise)

    rows: dict[str, dict] = {}

    def record(label: str, method, extra: dict) -> None:
        t0 = time.perf_counter()
        p, s = _scores(method, y_test, x_test, op)
        rows[label] = {"psnr": float(p.mean()), "ssim": float(s.mean()), "psnr_per_image": p.tolist(),
                       "seconds_per_image": (time.perf_counter() - t0) / args.test, **extra}
        print(f"  {label:<28} PSNR {rows[label]['psnr']:6.2f} dB  SSIM {rows[label]['ssim']:.4f}", flush=True)

    zero = lambda y, op: op.A_dagger(y).real  # noqa: E731
    record("zero-filled", zero, {})
    for kind, grid in GRIDS.items():
        wavelets = ["haar", "db4"] if kind == "fista" else ["haar"]
        tuned = []
        for wavelet in wavelets:
            for lam in grid:
                p, _ = _scores(_classical(kind, lam, op, wavelet), y_tune, x_tune, op)
                tuned.append((float(p.mean()), lam, wavelet))
                print(f"  tune {kind:<8} {wavelet:<5} lam={lam:<8g} validation PSNR {tuned[-1][0]:.2f}",
                      flush=True)
        best_psnr, lam, wavelet = max(tuned)
        edge = lam in (grid[0], grid[-1])
        label = {"fista": f"l1-{wavelet} FISTA", "tv": "TV", "firenet": "FIRENET"}[kind]
        record(label, _classical(kind, lam, op, wavelet),
               {"kind": kind, "lam": lam, "wavelet": wavelet, "validation_psnr": best_psnr,
                "lam_at_grid_edge": edge, "grid": [(p, lam_, w) for p, lam_, w in tuned]})
    fista_label = next(k for k, v in rows.items() if v.get("kind") == "fista")
    for name, ck in checkpoints.items():
        method = ck.build(op)
        record(name, method, {"checkpoint": str(ck.path), "architecture": ck.meta["architecture"],
                              "train_seconds": ck.meta.get("seconds")})
        mine = torch.tensor(rows[name]["psnr_per_image"])
        for ref in ("zero-filled", fista_label):
            other = torch.tensor(rows[ref]["psnr_per_image"])
            rows[name][f"gain_over_{ref}"] = float((mine - other).mean())
            rows[name][f"wins_over_{ref}"] = float((mine > other).float().mean())

    payload = {"benchmark": "trained_accuracy", "machine": platform.platform(),
               "threads": torch.get_num_threads(), "operator": cfg.operator.model_dump(),
               "generator": cfg.data.source, "noise": args.noise, "test_images": args.test,
               "tune_images": args.tune, "fista_label": fista_label, "rows": rows}
    write_json(args.out / "trained_accuracy.json", payload)

    print(f"\n{args.test} held-out {cfg.data.source} phantoms, {cfg.operator.kind} {cfg.operator.mask} "
          f"rate {cfg.operator.rate}, {cfg.operator.size}px, noise {args.noise}")
    print(f"{'method':<28}{'PSNR':>8}{'SSIM':>8}{'vs zero-filled':>16}{'vs ' + fista_label:>22}")
    for label, row in rows.items():
        gz = row.get("gain_over_zero-filled")
        gf = row.get(f"gain_over_{fista_label}")
        cols = (f"{gz:+.2f} dB" if gz is not None else "", f"{gf:+.2f} dB" if gf is not None else "")
        print(f"{label:<28}{row['psnr']:8.2f}{row['ssim']:8.4f}{cols[0]:>16}{cols[1]:>22}")
    print(f"wrote {args.out / 'trained_accuracy.json'}")


if __name__ == "__main__":
    main()
