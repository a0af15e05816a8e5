"""Which NUFFT library for non-Cartesian MRI (``stablerecon.operators.nufft``): torchkbnufft or FINUFFT.

Usage::

    python benchmarks/nufft_choice.py [--sizes 128 256] [--coils 1 8] [--repeats 3] [--threads 2]
                                      [--accuracy-samples 2000] [--out benchmarks/results]

Prints a table and writes ``nufft_choice.json`` (atomically, after every row). For each image size
``N`` (radial trajectories with about ``pi N / 4`` and ``pi N / 2`` spokes, the latter the Nyquist
rate, ``2 N`` samples per spoke) and coil count it measures, for every candidate:

* ``A+A^H [ms]``: one forward then one adjoint NUFFT of a ``(1, coils, N, N)`` complex batch
  (minimum over ``--repeats`` runs after a warm-up; plan/table set-up included where the library
  does it per call, as FINUFFT's simple interface does);
* ``build [s]``: what is precomputed once per trajectory (tables, sparse matrices);
* ``fwd err`` / ``adj err``: relative error of the forward / adjoint NUFFT against the non-uniform
  DFT computed by direct summation ``sum_n x[n] exp(-i omega_k . (n - N//2))`` on
  ``--accuracy-samples`` random trajectory samples (coil 0);
* ``dot64`` / ``dot32``: the dot-product test ``|<A x, y> - <x, A^H y>| / (||A x|| ||y||)`` in
  complex128 / complex64, on the whole batch.

Candidates: pytorch-finufft (FINUFFT, ``eps=1e-12`` in double, ``1e-6`` in single, ``upsampfac=2``),
torchkbnufft with table interpolation (its default table of ``2^10`` entries per grid unit, and
``2^14``) and with its precomputed sparse interpolation matrix; and, for the record, the chosen
operator ``NonCartesianFourier`` through its public ``A``/``A_adjoint`` (both backends).
"""

from __future__ import annotations

import argparse
import math
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from stablerecon.files import write_json


def radial_traj(n: int, spokes: int) -> torch.Tensor:
    from stablerecon.operators.trajectories import radial

    return radial(n, spokes)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def direct_nudft(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """``sum_n x[n] exp(-i omega_k . (n - N//2))`` for an ``(N, N)`` image, by separable summation."""
    n = x.shape[-1]
    grid = torch.arange(n, dtype=torch.float64) - n // 2
    ey = torch.polar(torch.ones(omega.shape[1], n, dtype=torch.float64), -omega[0][:, None] * grid[None, :])
    ex = torch.polar(torch.ones(omega.shape[1], n, dtype=torch.float64), -omega[1][:, None] * grid[None, :])
    return ((ey @ x) * ex).sum(dim=1)  # (K, N) @ (N, N) -> (K, N), then the column sum


def direct_adjoint(y: torch.Tensor, omega: torch.Tensor, n: int) -> torch.Tensor:
    """``sum_k y_k exp(+i omega_k . (n - N//2))`` on an ``(N, N)`` grid."""
    grid = torch.arange(n, dtype=torch.float64) - n // 2
    ey = torch.polar(torch.ones(omega.shape[1], n, dtype=torch.float64), omega[0][:, None] * grid[None, :])
    ex = torch.polar(torch.ones(omega.shape[1], n, dtype=torch.float64), omega[1][:, None] * grid[None, :])
    return (ey * y[:, None]).T @ ex


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a.to(b.dtype) - b) / torch.linalg.vector_norm(b))


def dot_test(fwd: Callable, adj: Callable, x: torch.Tensor, y: torch.Tensor) -> float:
    ax, aty = fwd(x), adj(y)
    lhs = (ax.conj() * y).sum()
    rhs = (x.conj() * aty).sum()
    return float((lhs - rhs).abs() / (torch.linalg.vector_norm(ax) * torch.linalg.vector_norm(y)))


def candidates(n: int, omega: torch.Tensor, threads: int) -> dict[str, Callable]:
    """name -> builder(dtype) returning (forward, adjoint) on complex (1, C, N, N) / (1, C, K)."""
    import torchkbnufft as tkbn
    from pytorch_finufft.functional import finufft_type1, finufft_type2

    from stablerecon.operators.nufft import NonCartesianFourier

    def finufft(cdt: torch.dtype):
        eps = 1e-12 if cdt == torch.complex128 else 1e-6
        om = omega.to(torch.float64 if cdt == torch.complex128 else torch.float32)
        kw = {"eps": eps, "modeord": 0, "upsampfac": 2.0, "nthreads": threads}
        return (lambda x: finufft_type2(om, x, isign=-1, **kw),
                lambda y: finufft_type1(om, y, (n, n), isign=1, **kw))

    def kb_table(oversamp: int):
        def build(cdt: torch.dtype):
            om = omega.to(torch.float64 if cdt == torch.complex128 else torch.float32)
            fwd = tkbn.KbNufft(im_size=(n, n), table_oversamp=oversamp, dtype=cdt)
            adj = tkbn.KbNufftAdjoint(im_size=(n, n), table_oversamp=oversamp, dtype=cdt)
            return (lambda x: fwd(x, om), lambda y: adj(y, om))
        return build

    def kb_spmat(cdt: torch.dtype):
        om = omega.to(torch.float64 if cdt == torch.complex128 else torch.float32)
        mats = tkbn.calc_tensor_spmatrix(om, (n, n))
        fwd = tkbn.KbNufft(im_size=(n, n), dtype=cdt)
        adj = tkbn.KbNufftAdjoint(im_size=(n, n), dtype=cdt)
        return (lambda x: fwd(x, om, interp_mats=mats), lambda y: adj(y, om, interp_mats=mats))

    def operator(backend: str):
        def build(cdt: torch.dtype):
            from stablerecon.operators.trajectories import radial_dcf

            spokes = omega.shape[1] // (2 * n)
            op = NonCartesianFourier(omega, n, dcf=radial_dcf(n, spokes), backend=backend)
            scale = float(n)  # the operator is unitary-scaled by 1 / sqrt(N * N)

            def fwd(x: torch.Tensor) -> torch.Tensor:
                return op.A(x.reshape(-1, 1, n, n)).reshape(*x.shape[:-2], -1) * scale

            def adj(y: torch.Tensor) -> torch.Tensor:
                return op.A_adjoint(y.reshape(-1, 1, y.shape[-1])).reshape(*y.shape[:-1], n, n) * scale
            return fwd, adj
        return build

    return {
        "pytorch-finufft": finufft,
        "torchkbnufft table 2^10": kb_table(2**10),
        "torchkbnufft table 2^14": kb_table(2**14),
        "torchkbnufft sparse matrix": kb_spmat,
        "NonCartesianFourier[finufft]": operator("finufft"),
        "NonCartesianFourier[torchkbnufft]": operator("torchkbnufft"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--coils", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--accuracy-samples", type=int, default=2000)
    parser.add_argument("--candidates", nargs="*", default=None, help="names to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)
    path = args.out / "nufft_choice.json"
    rows: list[dict[str, object]] = []
    result = {"benchmark": "nufft_choice", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.platform(), "repeats": args.repeats, "rows": rows}
    header = (f"{'N':>4}{'spokes':>7}{'coils':>6}  {'candidate':<34}{'dtype':<11}{'A+A^H [ms]':>11}"
              f"{'build [s]':>10}{'fwd err':>10}{'adj err':>10}{'dot64':>10}{'dot32':>10}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.platform()}")
    print(header)
    print("-" * len(header))
    g = torch.Generator().manual_seed(0)
    for n in args.sizes:
        for spokes in (math.ceil(math.pi * n / 4), math.ceil(math.pi * n / 2)):
            omega = radial_traj(n, spokes)
            k = omega.shape[1]
            subset = torch.randperm(k, generator=g)[: args.accuracy_samples]
            om_sub = omega[:, subset]
            for coils in args.coils:
                x64 = torch.complex(torch.randn(1, coils, n, n, dtype=torch.float64, generator=g),
                                    torch.randn(1, coils, n, n, dtype=torch.float64, generator=g))
                y64 = torch.complex(torch.randn(1, coils, k, dtype=torch.float64, generator=g),
                                    torch.randn(1, coils, k, dtype=torch.float64, generator=g))
                ref_fwd = direct_nudft(x64[0, 0], om_sub)
                y_sub = torch.zeros_like(y64)
                y_sub[0, 0, subset] = y64[0, 0, subset]
                ref_adj = direct_adjoint(y64[0, 0, subset], om_sub, n)
                for name, build in candidates(n, omega, args.threads).items():
                    if args.candidates and name not in args.candidates:
                        continue
                    for cdt in (torch.complex128, torch.complex64):
                        t0 = time.perf_counter()
                        fwd, adj = build(cdt)
                        build_s = time.perf_counter() - t0
                        x, y = x64.to(cdt), y64.to(cdt)
                        with torch.no_grad():
                            seconds = best_time(lambda: adj(fwd(x)), args.repeats)  # noqa: B023
                            fwd_err = rel(fwd(x)[0, 0, subset], ref_fwd)
                            adj_err = rel(adj(y_sub.to(cdt))[0, 0], ref_adj)
                            dot = dot_test(fwd, adj, x, y)
                        row = {"size": n, "spokes": spokes, "samples": k, "coils": coils, "candidate": name,
                               "dtype": str(cdt).replace("torch.", ""), "seconds": seconds,
                               "build_seconds": build_s, "forward_rel_error": fwd_err,
                               "adjoint_rel_error": adj_err, "dot_test": dot}
                        rows.append(row)
                        write_json(path, result)
                        dot_cols = (f"{dot:>10.1e}{'':>10}" if cdt == torch.complex128
                                    else f"{'':>10}{dot:>10.1e}")
                        print(f"{n:>4}{spokes:>7}{coils:>6}  {name:<34}{row['dtype']:<11}"
                              f"{1e3 * seconds:>11.1f}{build_s:>10.2f}{fwd_err:>10.1e}"
                              f"{adj_err:>10.1e}{dot_cols}", flush=True)
    summarise(rows)
    print(f"wrote {path}")


def summarise(rows: list[dict]) -> None:
    """Per candidate and dtype: the geometric-mean time ratio to pytorch-finufft and the worst errors."""
    base = {(r["size"], r["spokes"], r["coils"], r["dtype"]): r["seconds"] for r in rows
            if r["candidate"] == "pytorch-finufft"}
    names = sorted({(r["candidate"], r["dtype"]) for r in rows})
    if not names:
        return
    print()
    print(f"{'candidate':<34}{'dtype':<11}{'time / finufft':>15}{'worst fwd err':>15}{'worst dot':>11}")
    for name, dtype in names:
        sel = [r for r in rows if r["candidate"] == name and r["dtype"] == dtype]
        ratios = [r["seconds"] / base[key] for r in sel
                  if (key := (r["size"], r["spokes"], r["coils"], r["dtype"])) in base]
        ratio = math.exp(sum(math.log(q) for q in ratios) / len(ratios)) if ratios else math.nan
        print(f"{name:<34}{dtype:<11}{ratio:>15.2f}{max(r['forward_rel_error'] for r in sel):>15.1e}"
              f"{max(r['dot_test'] for r in sel):>11.1e}")


if __name__ == "__main__":
    main()
