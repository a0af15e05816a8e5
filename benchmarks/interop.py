"""DeepInverse interop: what the adapters cost, and the same solver on either library's physics.

Usage (in an environment with deepinv, e.g. ``.venv-deepinv`` from ``make test-interop``)::

    python benchmarks/interop.py [--size 128] [--batch 8] [--repeats 20] [--steps 100]
                                 [--out benchmarks/results]

Prints a table and writes ``interop.json``. Rows:

* ``from_deepinv(MRI)``, ``from_deepinv(Tomography)``: ``A`` then ``A_adjoint`` through the adapter
  against the same DeepInverse physics called directly (target: ratio <= 1.1, for MRI in the
  grid layout; the default sampled layout, which adds a gather and a scatter, is also timed
  against the physics and against stablerecon's ``SubsampledFourier``, informatively);
* ``FISTA on to_deepinv(SubsampledFourier)`` against ``FISTA on deepinv MRI``: DeepInverse's FISTA
  with a wavelet prior, 100 iterations, on the same mask and image (time ratio, and the two
  PSNRs, which must agree: it is the same problem);
* ``worst case (100 steps), deepinv U-Net``: the audit's gradient search on a DeepInverse U-Net
  (``ArtifactRemoval``) on MRI at ``size x size``: seconds (untrained weights: timing only).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

from stablerecon.audit import worst_case
from stablerecon.data import image
from stablerecon.files import write_json
from stablerecon.interop.deepinv import from_deepinv, method_from_deepinv, require_deepinv, to_deepinv
from stablerecon.metrics import psnr
from stablerecon.operators import SubsampledFourier, masks

sys.path.insert(0, str(Path(__file__).parent))
from operators import a_then_adjoint, paired_times  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100, help="steps of the worst-case search")
    parser.add_argument("--fista-iters", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    dinv = require_deepinv()
    n, b = args.size, args.batch
    mask = masks.variable_density(n, rate=0.25, seed=0)
    rows: list[dict[str, object]] = []

    def record(name: str, seconds: float, baseline: str, base_seconds: float, target: str, ok: bool | None,
               **extra: object) -> None:
        rows.append({"case": name, "seconds": seconds, "baseline": baseline, "baseline_seconds": base_seconds,
                     "ratio": seconds / base_seconds, "target": target, "pass": ok, **extra})

    # 1. the adapter's overhead on DeepInverse's own physics
    g = torch.Generator().manual_seed(0)
    mri = dinv.physics.MRI(mask=mask.float(), img_size=(n, n))
    x2 = torch.rand(b, 2, n, n, generator=g)
    xc = torch.complex(x2[:, :1], x2[:, 1:])
    t_op, t_dinv = paired_times(a_then_adjoint(from_deepinv(mri, kspace="grid"), xc),
                                a_then_adjoint(mri, x2), args.repeats)
    record("from_deepinv(MRI), kspace=grid", t_op, "deepinv MRI A+A^T", t_dinv, "ratio <= 1.1",
           t_op / t_dinv <= 1.1)
    # the default layout keeps the sampled values only: a gather and a scatter more, as
    # stablerecon's own SubsampledFourier (informative rows)
    sampled = from_deepinv(mri)
    t_op, t_dinv = paired_times(a_then_adjoint(sampled, xc), a_then_adjoint(mri, x2), args.repeats)
    record("from_deepinv(MRI), kspace=sampled", t_op, "deepinv MRI A+A^T", t_dinv, "-", None)
    t_op, t_sr = paired_times(a_then_adjoint(sampled, xc), a_then_adjoint(SubsampledFourier(mask), xc),
                              args.repeats)
    record("from_deepinv(MRI), kspace=sampled", t_op, "SubsampledFourier A+A^T", t_sr, "-", None)
    tomo = dinv.physics.Tomography(angles=90, img_width=n, normalize=True)
    x1 = x2[:, :1].contiguous()
    t_op, t_dinv = paired_times(a_then_adjoint(from_deepinv(tomo), x1), a_then_adjoint(tomo, x1),
                                max(3, args.repeats // 4))
    record("from_deepinv(Tomography, 90 angles)", t_op, "deepinv Tomography A+A^T", t_dinv, "ratio <= 1.1",
           t_op / t_dinv <= 1.1)

    # 2. DeepInverse's FISTA on a stablerecon operator and on DeepInverse's MRI, same mask and image
    truth = image("camera", size=n)
    fourier = SubsampledFourier(mask)

    def fista() -> object:
        prior = dinv.optim.WaveletPrior(wv="db4", level=3)
        return dinv.optim.FISTA(data_fidelity=dinv.optim.L2(), prior=prior, lambda_reg=1e-3, stepsize=1.0,
                                max_iter=args.fista_iters)

    results: dict[str, torch.Tensor] = {}

    def on_stablerecon() -> None:
        with torch.no_grad():
            results["stablerecon"] = method_from_deepinv(fista())(fourier.A(truth), fourier).real

    physics = to_deepinv(fourier)  # noqa: F841 - built once outside the timing, as the method does

    def on_deepinv() -> None:
        with torch.no_grad():
            y = mri.A(torch.cat([truth, torch.zeros_like(truth)], 1))
            results["deepinv"] = fista()(y, mri)[:, :1]

    t_sr, t_dinv = paired_times(on_stablerecon, on_deepinv, 3)
    p_sr, p_dinv = (float(psnr(results[k], truth, data_range=1.0)) for k in ("stablerecon", "deepinv"))
    zero = float(psnr(fourier.A_dagger(fourier.A(truth)).real, truth, data_range=1.0))
    record(f"FISTA+wavelets ({args.fista_iters} it) on to_deepinv(SubsampledFourier)", t_sr,
           "FISTA+wavelets on deepinv MRI", t_dinv, "same PSNR", abs(p_sr - p_dinv) < 0.01,
           psnr=p_sr, baseline_psnr=p_dinv, zero_filled_psnr=zero)

    # 3. the audit's worst-case search through a DeepInverse U-Net
    torch.manual_seed(0)
    unet = dinv.models.UNet(2, 2, scales=4, batch_norm=False)
    net = dinv.models.ArtifactRemoval(unet, mode="adjoint").eval()
    op = from_deepinv(mri)
    y = op.A(truth)
    t0 = time.perf_counter()
    search = worst_case(method_from_deepinv(net), y, op, [0.02], steps=args.steps, restarts=1)
    t_search = time.perf_counter() - t0
    rows.append({"case": f"worst case ({args.steps} steps), deepinv U-Net {n}x{n}", "seconds": t_search,
                 "baseline": "-", "baseline_seconds": None, "ratio": None, "target": "-", "pass": None,
                 "amplification": float(search.amplification.max())})

    print(f"size {n}x{n}, batch {b}, torch {torch.__version__}, deepinv {dinv.__version__}, "
          f"{torch.get_num_threads()} threads")
    header = f"{'case':<58}{'[ms]':>10}  {'baseline':<32}{'[ms]':>10}{'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = "" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL")
        base = "" if r["baseline_seconds"] is None else f"{1e3 * r['baseline_seconds']:10.1f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:7.3f}"
        print(f"{r['case']:<58}{1e3 * r['seconds']:>10.1f}  {r['baseline']:<32}{base:>10}{ratio:>7}  "
              f"{r['target']} {verdict}")
        if "psnr" in r:
            print(f"{'':<4}PSNR {r['psnr']:.2f} dB on stablerecon's operator, {r['baseline_psnr']:.2f} dB on "
                  f"deepinv's MRI (zero-filled {r['zero_filled_psnr']:.2f} dB)")
        if "amplification" in r:
            print(f"{'':<4}worst-case amplification at 2%: {r['amplification']:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "interop.json"
    write_json(path, {"benchmark": "interop", "size": n, "batch": b, "torch": torch.__version__,
                      "deepinv": dinv.__version__, "threads": torch.get_num_threads(),
                      "machine": platform.platform(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
