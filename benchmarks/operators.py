"""Time each operator's ``A`` then ``A_adjoint`` against the raw kernel, in the same run.

Usage::

    python benchmarks/operators.py [--size 256] [--batch 8] [--repeats 30] [--out benchmarks/results]

Prints a table and writes ``operators.json``. Targets (ratios, so they hold on any machine):

* ``SubsampledFourier``: A + A_adjoint within 1.3x of bare ``torch.fft.fft2`` + ``ifft2``;
* ``SubsampledMultiCoilFourier`` (12 coils at 320 x 320, whatever ``--size``): A + A_adjoint within
  1.3x of the bare batched ``fft2`` + ``ifft2`` of the 12 coil images;
* ``NonCartesianFourier`` (radial, a quarter of the Nyquist spokes): A + A_adjoint within 1.1x of
  FINUFFT (``pytorch_finufft``) called directly with the same settings;
* ``Radon`` (180 angles): A + A_adjoint at least 3x faster than ``skimage.transform.radon`` alone
  (on the same batch, image by image).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from skimage.transform import radon as skimage_radon

from stablerecon.allocator import retain_freed_memory
from stablerecon.files import write_json
from stablerecon.operators import (
    Blur,
    Downsample,
    FanBeam,
    GaussianMatrix,
    Inpainting,
    LinearOperator,
    NonCartesianFourier,
    Radon,
    SubsampledFourier,
    SubsampledMultiCoilFourier,
    SubsampledWalshHadamard,
    birdcage_maps,
    gaussian_kernel,
    masks,
    trajectories,
)


def paired_times(fn: Callable[[], object], baseline: Callable[[], object],
                 repeats: int, min_seconds: float = 2.0) -> tuple[float, float]:
    """Minimum wall times (seconds) of ``fn`` and ``baseline``, run alternately.

    Alternating the two cancels slow drifts of the machine's speed out of their ratio; the
    minimum is the least noisy estimate of the cost itself (as in ``timeit``). At least
    ``repeats`` pairs, and more until the pairs took ``min_seconds`` in all (at most 2000 pairs):
    the millisecond operators' minima need hundreds of runs to settle.
    """
    fn(), baseline()
    t_fn, t_base = [], []
    spent = 0.0
    while len(t_fn) < repeats or (spent < min_seconds and len(t_fn) < 2000):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        baseline()
        t2 = time.perf_counter()
        t_fn.append(t1 - t0)
        t_base.append(t2 - t1)
        spent += t2 - t0
    return min(t_fn), min(t_base)


def a_then_adjoint(op: LinearOperator, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return op.A_adjoint(op.A(x))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--angles", type=int, default=180)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    retain_freed_memory()  # as the audit does: freed buffers reused, not faulted back in per call
    n, b = args.size, args.batch
    x = torch.rand(b, 1, n, n, generator=torch.Generator().manual_seed(0))
    rows: list[dict[str, object]] = []

    def record(name: str, op_time: float, baseline: str, base_time: float, target: str,
               ok: bool | None) -> None:
        rows.append({"operator": name, "seconds": op_time, "baseline": baseline,
                     "baseline_seconds": base_time, "ratio": op_time / base_time,
                     "target": target, "pass": ok})

    # Fourier against bare FFTs.
    fourier = SubsampledFourier(masks.variable_density(n, 0.25, seed=0))
    t_op, t_fft = paired_times(
        a_then_adjoint(fourier, x),
        lambda: torch.fft.ifft2(torch.fft.fft2(x, norm="ortho"), norm="ortho"),
        args.repeats,
    )
    record("SubsampledFourier", t_op, "torch.fft.fft2+ifft2", t_fft, "ratio <= 1.3", t_op / t_fft <= 1.3)

    # Multi-coil Fourier (SENSE) at 320 x 320 with 12 coils against the bare batched FFTs of the
    # coil images (the maps' multiplications, the sampling and the coil sum are the overhead).
    mc_n, coils = 320, 12
    multicoil = SubsampledMultiCoilFourier(masks.cartesian_lines(mc_n, 0.25, acs=24, seed=0),
                                           birdcage_maps(coils, mc_n))
    x_mc = torch.rand(b, 1, mc_n, mc_n, generator=torch.Generator().manual_seed(1))
    z_mc = torch.randn(b, coils, mc_n, mc_n, dtype=torch.complex64,
                       generator=torch.Generator().manual_seed(2))
    t_op, t_fft = paired_times(
        a_then_adjoint(multicoil, x_mc),
        lambda: torch.fft.ifft2(torch.fft.fft2(z_mc, norm="ortho"), norm="ortho"),
        args.repeats,
    )
    record(f"SubsampledMultiCoilFourier ({coils} coils, {mc_n}px)", t_op, "batched fft2+ifft2 of coil images",
           t_fft, "ratio <= 1.3", t_op / t_fft <= 1.3)

    # Non-Cartesian Fourier (radial, a quarter of the Nyquist spokes) against FINUFFT called
    # directly with the operator's settings (type 2 forward, type 1 adjoint).
    from pytorch_finufft.functional import finufft_type1, finufft_type2

    traj = trajectories.radial(n, max(1, trajectories.nyquist_spokes(n) // 4), golden=True)
    nufft = NonCartesianFourier(traj, n, dcf=torch.ones(traj.shape[1], dtype=torch.float64))
    points = traj.float()
    kw = {"eps": 1e-6, "modeord": 0, "upsampfac": 2.0, "nthreads": torch.get_num_threads()}
    x_c = x.to(torch.complex64)
    t_op, t_lib = paired_times(
        a_then_adjoint(nufft, x),
        lambda: finufft_type1(points, finufft_type2(points, x_c, isign=-1, **kw), (n, n), isign=1, **kw),
        args.repeats,
    )
    record("NonCartesianFourier (radial)", t_op, "pytorch_finufft type 2 + type 1", t_lib, "ratio <= 1.1",
           t_op / t_lib <= 1.1)

    # Radon against scikit-image's radon on the same images.
    t0 = time.perf_counter()
    radon = Radon(n, angles=args.angles)
    build = time.perf_counter() - t0
    yy, xx = np.mgrid[:n, :n]
    disc = torch.from_numpy(np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2) <= n / 2 - 1)
    x_disc = x * disc  # scikit-image assumes the image vanishes outside the inscribed circle
    theta = np.linspace(0.0, 180.0, args.angles, endpoint=False)
    images = x_disc[:, 0].numpy()
    t_op, t_sk = paired_times(
        a_then_adjoint(radon, x_disc),
        lambda: [skimage_radon(im, theta=theta, circle=True) for im in images],
        max(2, args.repeats // 5),
    )
    record("Radon", t_op, "skimage.transform.radon (A only)", t_sk, "ratio <= 1/3", t_op / t_sk <= 1 / 3)
    rows[-1]["build_seconds"] = build

    # CT at 128 x 128 with 60 views (the demos' and shipped networks' size): the cached sparse
    # matrix against the same operator kept matrix-free (informative, no target).
    x_small = torch.rand(b, 1, 128, 128, generator=torch.Generator().manual_seed(3))
    for kind in (Radon, FanBeam):
        cached, free = kind(128, angles=60), kind(128, angles=60)
        free.matrix_bytes = 0
        cached.A(x_small)  # assemble the matrix outside the timing
        t_op, t_free = paired_times(a_then_adjoint(cached, x_small), a_then_adjoint(free, x_small),
                                    args.repeats)
        record(f"{kind.__name__} (128px, 60 views, sparse matrix)", t_op, "the same, matrix-free", t_free,
               "-", None)

    # Other operators, against the bare torch kernel they are built on (informative, no target).
    hadamard = SubsampledWalshHadamard(masks.variable_density(n, 0.25, seed=0, origin="corner"))
    flat = x.reshape(b, 1, n * n)
    walsh = torch.from_numpy((scipy.linalg.hadamard(n) / np.sqrt(n)).astype(np.float32))
    keep = masks.uniform_random(n, 0.5, seed=0)
    others: list[tuple[str, LinearOperator, str, Callable[[], object]]] = [
        ("SubsampledWalshHadamard", hadamard, "dense Hadamard matmul",
         lambda: walsh @ x @ walsh.T),
        ("Blur", Blur(gaussian_kernel(2.0), n), "torch.fft.fft2+ifft2",
         lambda: torch.fft.ifft2(torch.fft.fft2(x))),
        ("Inpainting", Inpainting(keep), "x * mask",
         lambda: x * keep),
        ("Downsample", Downsample(4, n), "F.avg_pool2d",
         lambda: torch.nn.functional.avg_pool2d(x, 4)),
    ]
    if n <= 128:
        g = GaussianMatrix(n * n // 4, (n, n), seed=0)
        others.append(("GaussianMatrix", g, "x @ G.T", lambda: flat @ g.matrix.float().T))
    for name, op, base_name, base_fn in others:
        t_op, t_base = paired_times(a_then_adjoint(op, x), base_fn, args.repeats)
        record(name, t_op, base_name, t_base, "-", None)

    header = f"{'operator':<44}{'A+A* [ms]':>11}  {'baseline':<34}{'[ms]':>9}{'ratio':>8}  target"
    print(f"size {n}x{n}, batch {b}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = "" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL")
        print(f"{r['operator']:<44}{1e3 * r['seconds']:>11.2f}  {r['baseline']:<34}"
              f"{1e3 * r['baseline_seconds']:>9.2f}{r['ratio']:>8.3f}  {r['target']} {verdict}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "operators",
        "size": n,
        "batch": b,
        "angles": args.angles,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "rows": rows,
    }
    path = args.out / "operators.json"
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
