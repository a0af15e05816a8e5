"""The Deep Image Prior on every task of its acceptance list, and its speed.

Usage::

    python benchmarks/dip.py [--tasks timing impedance denoise inpaint sr mri ct] [--size 128]
        [--quick] [--out benchmarks/results]

All tasks use 128 x 128 grayscale images (``stablerecon.data.image``) and the benchmark
generator: the ``skip`` network of :class:`~stablerecon.nets.dip.SkipNet` with 5 levels of 32
channels (``--channels``). It reports

* ``timing``: seconds per iteration of the skip network (64 and 128 channels, the paper's) at
  128 x 128 and 256 x 256, against a plain forward-backward pass of the same network (ratio);
* ``impedance`` (the paper's Fig. 2): iterations for the fit of ``camera``, of ``camera`` with
  its pixels shuffled, and of uniform noise to reach MSE 0.005, for the encoder-decoder alone
  (no skip branches, "hourglass") and for the skip network (4 skip channels);
* ``denoise`` (sigma = 25/255, five images);
* ``inpaint`` (50% Bernoulli mask on ``camera``) against ``skimage.restoration.inpaint_biharmonic``;
* ``sr`` (x4 box downsampling) against bicubic interpolation (``skimage.transform.resize``,
  order 3);
* ``mri`` (25% variable-density Fourier, 1% noise; Shepp-Logan and ``camera``) against
  zero-filling and TV with ``lam`` tuned on the truth;
* ``ct`` (Radon, 60 angles, 1% noise) against filtered back-projection.

For every fit it records the PSNR curve's peak (the oracle) and its iteration, the PSNR after
the whole fixed schedule, and the choices of ES-WMV and ES-EMV (iteration, PSNR of the EMA and
of the raw output there, iterations run and saved against the schedule, gap to the oracle).

Each finished case is written at once (atomically) to ``dip.json``; a rerun skips finished
cases, so an interrupted run resumes. ``--quick`` runs 64 x 64 images, short schedules and one
denoising image (for the test suite).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _results import resumable, write_json

from stablerecon import data
from stablerecon.metrics import psnr
from stablerecon.nets.dip import DeepImagePrior, ExponentialVariance, SkipNet, WindowedVariance
from stablerecon.operators import Downsample, Identity, Inpainting, Radon, SubsampledFourier, masks, noise
from stablerecon.solvers import SparseReconstructor

DENOISE_IMAGES = ["camera", "astronaut", "coins", "moon", "cat"]
SIGMA = 25 / 255


def _db(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return float(psnr(x_hat.real if x_hat.is_complex() else x_hat, x, data_range=1.0)[0])


def _generator(channels: int, depth: int = 5) -> SkipNet:
    torch.manual_seed(0)
    return SkipNet(depth=depth, channels_down=channels, channels_up=channels)


# ----------------------------------------------------------------------------- tasks


def task_timing(args: argparse.Namespace) -> dict:
    rows = {}
    sizes = [64] if args.quick else [128, 256]
    for channels in ([16] if args.quick else [32, 64, 128]):
        for size in sizes:
            net = _generator(channels)
            x = data.image("camera", size)
            steps = 5 if args.quick else 20
            dip = DeepImagePrior(net, steps=steps, early_stopping=None, progress=False)
            dip.fit(x, Identity(size), steps=2)  # warm-up
            t = time.perf_counter()
            dip.fit(x, Identity(size))
            per_iter = (time.perf_counter() - t) / steps
            # baseline: the bare forward + backward + Adam step of the same network
            z = torch.rand(1, 32, size, size) * 0.1
            opt = torch.optim.Adam(net.parameters(), lr=0.01)
            t = time.perf_counter()
            for _ in range(steps):
                loss = (net(z) - x).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            bare = (time.perf_counter() - t) / steps
            rows[f"{channels}ch/{size}"] = {
                "channels": channels, "size": size, "seconds_per_iteration": per_iter,
                "bare_step_seconds": bare, "ratio": per_iter / bare,
                "parameters": sum(p.numel() for p in net.parameters())}
            print(f"  skip {channels:3d} ch {size}x{size}: {per_iter * 1e3:7.1f} ms/it "
                  f"(bare step {bare * 1e3:.1f} ms, ratio {per_iter / bare:.2f})")
    return rows


def task_impedance(args: argparse.Namespace) -> dict:
    size = args.size
    x = data.image("camera", size)
    gen = torch.Generator().manual_seed(0)
    shuffled = x.flatten()[torch.randperm(x.numel(), generator=gen)].reshape(x.shape)
    uniform = torch.rand(x.shape, generator=gen)
    target = 0.005
    out: dict = {"target_mse": target}
    # the encoder-decoder alone ("hourglass", no skip branches) and the skip network
    for arch, skip in (("hourglass", 0), ("skip", 4)):
        rows, limit = {}, None
        for name, img in [("natural", x), ("shuffled", shuffled), ("noise", uniform)]:
            steps = args.impedance_steps if limit is None else limit
            torch.manual_seed(0)
            net = SkipNet(channels_down=args.channels, channels_up=args.channels, channels_skip=skip)
            dip = DeepImagePrior(net, steps=steps, input_noise_std=0.0, ema=None, early_stopping=None,
                                 progress=not args.quick)
            result = dip.fit(img, Identity(size))
            reached = np.nonzero(result.losses <= target)[0]
            first = int(reached[0]) + 1 if reached.size else None
            rows[name] = {"iterations_to_target": first, "iterations_run": result.iterations_run,
                          "final_mse": float(np.nanmin(result.losses[-10:]))}
            if name == "natural":
                if first is None:
                    raise RuntimeError("the natural image never reached the target MSE; "
                                       "raise --impedance-steps")
                limit = 3 * first  # the others need not run longer than the claim requires
            shown = first if first is not None else f"> {result.iterations_run}"
            print(f"  {arch:9s} {name:9s}: MSE {target} after {shown} iterations")
        nat = rows["natural"]["iterations_to_target"]
        for name in ("shuffled", "noise"):
            other = rows[name]["iterations_to_target"]
            reached_at = other if other is not None else rows[name]["iterations_run"] + 1
            rows[name]["slowdown_at_least"] = reached_at / nat
            rows[name]["claim_3x_holds"] = other is None or other >= 3 * nat
        out[arch] = rows
    return out


def _fit(args: argparse.Namespace, y: torch.Tensor, op, x: torch.Tensor, schedule: int) -> dict:
    """Fit the whole ``schedule`` with ES-WMV and ES-EMV watching, and replay where each rule
    would have stopped (a rule never changes the fit, only where it ends)."""
    dip = DeepImagePrior(_generator(args.channels), steps=schedule,
                         early_stopping=WindowedVariance(args.window, 10**9), monitor=args.monitor,
                         progress=not args.quick)
    result = dip.fit(y, op, truth=x, observers=[ExponentialVariance(alpha=args.alpha, patience=10**9)])
    curve = result.psnr_curve  # of the EMA output, which the method returns
    rec = {
        "schedule": schedule, "oracle_iteration": result.oracle_iteration, "oracle_psnr": result.oracle_psnr,
        "final_psnr": float(curve[-1]), "final_raw_psnr": float(result.psnr[-1]),
        "restores": len(result.restores), "seconds": result.seconds,
    }
    rules = {"ES-WMV": (result.variances, WindowedVariance(args.window, args.patience)),
             "ES-EMV": (result.observed["ES-EMV"], ExponentialVariance(args.alpha, args.patience))}
    for rule, (values, replayer) in rules.items():
        chosen, stop = replayer.replay(values)
        ran = stop + 1 if stop is not None else schedule
        at = float(curve[chosen]) if chosen is not None else None
        raw = None if chosen is None else float(result.psnr[chosen])
        rec[rule] = {"iteration": chosen, "psnr": at, "raw_psnr": raw,
                     "stopped_at": stop, "iterations_run": ran, "saved": schedule - ran,
                     "gap_to_oracle": None if at is None else result.oracle_psnr - at}
    return rec


def _line(rec: dict) -> str:
    wmv = rec["ES-WMV"]
    return (f"peak {rec['oracle_psnr']:5.2f} @ {rec['oracle_iteration']:4d}, final {rec['final_psnr']:5.2f}, "
            f"ES-WMV {wmv['psnr']:5.2f} @ {wmv['iteration']} (ran {wmv['iterations_run']}/{rec['schedule']})")


def task_denoise(args: argparse.Namespace, done: dict, save: Callable[[], None]) -> dict:
    size = args.size
    images = DENOISE_IMAGES[:1] if args.quick else DENOISE_IMAGES
    for k, name in enumerate(images):
        if name in done:
            continue
        x = data.image(name, size)
        y = x + SIGMA * torch.randn(x.shape, generator=torch.Generator().manual_seed(100 + k))
        rec = _fit(args, y, Identity(size), x, args.denoise_steps) | {"noisy_psnr": _db(y, x)}
        done[name] = rec
        save()
        print(f"  {name:10s} noisy {rec['noisy_psnr']:5.2f}  {_line(rec)}")
    return done


def task_inpaint(args: argparse.Namespace) -> dict:
    from skimage.restoration import inpaint_biharmonic

    size = args.size
    x = data.image("camera", size)
    mask = torch.rand(size, size, generator=torch.Generator().manual_seed(0)) < 0.5
    op = Inpainting(mask)
    t = time.perf_counter()
    reference = inpaint_biharmonic(np.where(mask.numpy(), x[0, 0].numpy(), 0.0), ~mask.numpy())
    bih_seconds = time.perf_counter() - t
    out = _fit(args, op.A(x), op, x, args.inpaint_steps) | {
        "biharmonic_psnr": _db(torch.from_numpy(reference).float()[None, None], x),
        "biharmonic_seconds": bih_seconds, "observed_fraction": float(mask.float().mean()),
        "zero_filled_psnr": _db(op.A_adjoint(op.A(x)), x)}
    print(f"  camera 50%: DIP {_line(out)}; biharmonic {out['biharmonic_psnr']:.2f} dB")
    return out


def task_sr(args: argparse.Namespace) -> dict:
    from skimage.transform import resize

    size, factor = args.size, 4
    out = {}
    for name in (["camera"] if args.quick else ["camera", "astronaut"]):
        x = data.image(name, size)
        op = Downsample(factor, size)
        y = op.A(x)
        bicubic = resize(y[0, 0].numpy().astype(np.float64), (size, size), order=3, mode="reflect",
                         anti_aliasing=False)
        out[name] = _fit(args, y, op, x, args.sr_steps) | {
            "bicubic_psnr": _db(torch.from_numpy(np.clip(bicubic, 0, 1)).float()[None, None], x),
            "nearest_psnr": _db(op.A_dagger(y), x)}
        print(f"  {name} x4: DIP {_line(out[name])}; bicubic {out[name]['bicubic_psnr']:.2f} dB")
    return out


def _tuned_tv(op, y: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    best = (-math.inf, math.nan)
    for lam in (3e-4, 1e-3, 3e-3, 1e-2, 3e-2):
        with torch.no_grad():
            x_hat = SparseReconstructor("tv", op, lam=lam, max_iter=500)(y, op)
        best = max(best, (_db(x_hat, x), lam))
    return best


def task_mri(args: argparse.Namespace) -> dict:
    size = args.size
    op = SubsampledFourier(masks.variable_density(size, rate=0.25, seed=0))
    out = {}
    for name in ["shepp_logan", "camera"]:
        x = data.shepp_logan(size) if name == "shepp_logan" else data.image(name, size)
        clean = op.A(x)
        y = clean + noise.gaussian_like(clean, rel=0.01, seed=1)
        tv_psnr, tv_lam = _tuned_tv(op, y, x)
        out[name] = _fit(args, y, op, x, args.mri_steps) | {
            "zero_filled_psnr": _db(op.A_dagger(y), x), "tv_psnr": tv_psnr, "tv_lam": tv_lam}
        print(f"  {name}: DIP {_line(out[name])}; zero-filled {out[name]['zero_filled_psnr']:.2f}, "
              f"TV {tv_psnr:.2f} (lam {tv_lam:g})")
    return out


def task_ct(args: argparse.Namespace) -> dict:
    size = args.size
    op = Radon(size, angles=60)
    x = data.shepp_logan(size)
    clean = op.A(x)
    y = clean + noise.gaussian_like(clean, rel=0.01, seed=1)
    out = _fit(args, y, op, x, args.mri_steps) | {"fbp_psnr": _db(op.A_dagger(y), x)}
    print(f"  shepp_logan CT 60 angles: DIP {_line(out)}; FBP {out['fbp_psnr']:.2f} dB")
    return out


TASKS = ["timing", "impedance", "denoise", "inpaint", "sr", "mri", "ct"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=TASKS)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--denoise-steps", type=int, default=3000)
    parser.add_argument("--inpaint-steps", type=int, default=3000)
    parser.add_argument("--sr-steps", type=int, default=2000)
    parser.add_argument("--mri-steps", type=int, default=4000)
    parser.add_argument("--impedance-steps", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--patience", type=int, default=300)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--monitor", default="clean", choices=["raw", "clean", "ema"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.quick:
        args.size = 64
        args.channels = 16
        for name in ("denoise_steps", "inpaint_steps", "sr_steps", "mri_steps", "impedance_steps"):
            setattr(args, name, min(getattr(args, name), 400))
        args.window, args.patience = 20, 50
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "dip.json"
    payload = resumable(path, args)

    def save() -> None:
        write_json(path, payload)

    for task in args.tasks:
        if task in payload["tasks"] and task != "denoise":
            print(f"{task}: done (in {path.name})")
            continue
        print(f"{task}:")
        if task == "denoise":
            done = payload["tasks"].setdefault("denoise", {})
            task_denoise(args, done, save)
        else:
            payload["tasks"][task] = globals()[f"task_{task}"](args)
        save()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
