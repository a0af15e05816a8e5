"""The K-digits barrier (inexact input): LISTA networks and FIRENET on the construction of
Colbrook, Antun, Hansen (PNAS 2022, Theorem 1 and its numerical example).

Usage::

    python benchmarks/inexact_input.py [--Ks 1 2 3 4 5 6] [--ns 10 20 30] [--depths 10]
        [--extra-depths 5 20] [--steps 2000] [--batch 256] [--out benchmarks/results]

For each ``K`` (digits denied) and ``n`` (input precision) the problem class is
:class:`stablerecon.data.inexact_input.InexactInputProblem`: square-root LASSO problems
``min lam ||x||_1 + ||A x - y||`` with ``x`` in R^22, ``y`` in R^21, whose matrices ``A_1`` and
``A_2`` are ``||A_1 - A_2|| = 2^-(n+1/2) <= 2^-n`` apart (equal ``y``) while their solutions are
``sqrt(2) / (c + 2^-n-1) ~ 3 * 10^-K`` apart. LISTA networks (:class:`stablerecon.nets.LISTA`,
depths ``--depths``, plus ``--extra-depths`` at the middle ``n``) are trained with
:func:`stablerecon.training.train` on fresh samples of problem ``j = 2`` (random 5-sparse
tails) with a relative squared loss; FIRENET (``lam = 1``, 30 restarts of 50 steps,
``delta = 1e-6``, no training data) is run as is. Every method then gets the unseen inexact
input ``(y, A_n) = (y, A_2)`` (zero tail) whose true problem is ``(y, A_1)``; reported:

* ``err``: ``||method(y, A_n) - Xi(A_1, y)||``, the paper's column;
* ``worst``: the larger of the errors against the two solutions ``x_1``, ``x_2`` that the
  input cannot tell apart, never below ``floor = ||x_1 - x_2|| / 2 ~ 1.5 * 10^-K``;
* the thresholds ``10^-K``, ``10^-(K-1)``, ``10^-(K-2)``.

What it illustrates of Theorem 1: part 1 (no algorithm reaches ``K`` digits with probability
> 1/2): ``worst >= floor > 10^-K`` for every method, trained or not, at every input precision
``n`` (a consequence of the construction, checked by the closed form). Part 2 (``K - 1`` digits
exist but need arbitrarily many training samples) is *not* demonstrated: on this fixed class a
network trained on one ``A`` reaches ``err < 10^-(K-1)`` whenever it is accurate on that ``A``;
the theorem's unbounded sample count concerns the whole family of classes, which no finite
table shows. Part 3 (``K - 2`` digits from bounded data): FIRENET, with no training data,
reaches ``err < 10^-(K-2)`` (in fact ``~1.5 * 10^-K``, the floor).

Paper sizes: ``N1 = 2``, ``N2 = 20``, 5-sparse tails, ``lam = 1``, ``K in {1, 3, 6}``,
``n in {10, 20, 30}``, 10-layer LISTA trained 4000 epochs on 8000 fixed samples (batch 1000),
FIRENET 30 x 50. Here: the same problem sizes and FIRENET, ``K = 1..6``, LISTA trained
``--steps`` Adam steps on fresh batches (default 2000 x 256 = 512k samples seen, fewer updates
than the paper's 32k). Each finished cell is written to ``inexact_input.json`` at once
(atomically), so an interrupted run resumes; the LISTA runs also resume inside a cell from
their checkpoints (``--work``). Prints the table at the end.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _results import resumable, write_json

from stablerecon.data.inexact_input import InexactInputProblem
from stablerecon.nets import LISTA, FIRENet
from stablerecon.operators import Identity
from stablerecon.operators.base import LinearOperator
from stablerecon.training import train


class MatrixOperator(LinearOperator):
    """A dense ``(M, N)`` matrix acting on ``(B, 1, 1, N)`` -> ``(B, 1, M)`` (what FIRENET needs)."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__((1, 1, matrix.shape[1]), (1, matrix.shape[0]))
        self.register_buffer("matrix", matrix.to(torch.float64), persistent=False)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-2) @ self.matrix.T.to(x.dtype)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (y @ self.matrix.to(y.dtype)).unsqueeze(-2)

    def _exact_norm(self) -> float:
        return float(torch.linalg.matrix_norm(self.matrix, ord=2))


class ProblemData:
    """Training batches of problem ``j`` (a :class:`~stablerecon.training.loop.BatchSource`):
    batch ``step`` is a pure function of ``(seed, step)``; validation: 100 fixed samples."""

    def __init__(self, problem: InexactInputProblem, j: int, seed: int) -> None:
        self.problem, self.j, self.seed = problem, j, seed

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.problem.samples(self.j, batch_size, seed=1_000_003 * self.seed + 2 * step + 2)

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.problem.samples(self.j, 100, seed=1_000_003 * self.seed + 1)


def relative_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``||x_hat - x||^2 / ||x||^2`` over the batch (scale-free: ``x`` is ``~10^-K``)."""
    return ((x_hat - x) ** 2).sum() / (x**2).sum()


def errors(problem: InexactInputProblem, x_hat: torch.Tensor) -> dict:
    """Errors of ``x_hat`` ``(1, N)`` against the two indistinguishable solutions."""
    err = float(torch.linalg.norm(x_hat - problem.solution(1)))
    other = float(torch.linalg.norm(x_hat - problem.solution(2)))
    return {"err": err, "err_x2": other, "worst": max(err, other)}


def run_lista(problem: InexactInputProblem, depth: int, args: argparse.Namespace, work: Path) -> dict:
    torch.manual_seed(args.seed)
    net = LISTA(problem.matrix(2), layers=depth, lam=problem.lam)
    config = {"name": f"lista_K{problem.K}_n{problem.n}_L{depth}", "seed": args.seed,
              "model": {"kind": "postprocessing", "complex_input": False},
              "operator": {"kind": "identity", "size": 16},
              "train": {"epochs": 10, "steps_per_epoch": max(1, args.steps // 10), "batch_size": args.batch,
                        "lr": args.lr, "schedule": "cosine", "grad_clip": None}}
    result = train(config, work / config["name"], progress=False, model=net,
                   data=ProblemData(problem, 2, args.seed), loss=relative_loss)
    y = problem.measurements(torch.zeros(1, problem.N2, dtype=torch.float64))
    with torch.no_grad():
        x_hat = result.model(y, problem.matrix(2))
    val = 10 ** (-result.best["val_psnr"] / 20)  # root-mean-square entry error on validation
    return errors(problem, x_hat) | {"val_rms": val, "train_seconds": result.seconds}


def run_firenet(problem: InexactInputProblem) -> dict:
    op = MatrixOperator(problem.matrix(2))
    net = FIRENet(op, Identity((1, problem.shape[1])), lam=problem.lam, restarts=30, inner=50, delta=1e-6)
    y = problem.measurements(torch.zeros(1, problem.N2, dtype=torch.float64)).reshape(1, 1, -1)
    with torch.no_grad():
        x_hat = net(y, op).reshape(1, -1)
    return errors(problem, x_hat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--Ks", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--ns", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--depths", type=int, nargs="+", default=[10])
    parser.add_argument("--extra-depths", type=int, nargs="*", default=[5, 20])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--work", type=Path, default=None,
                        help="LISTA run folders (default OUT/inexact_input_runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "inexact_input.json"
    work = args.work or args.out / "inexact_input_runs"
    payload = resumable(path, args, ignore=("out", "threads", "work"))
    cells = payload.setdefault("cells", {})
    middle = args.ns[len(args.ns) // 2]
    jobs = [("FIRENET", K, n, 0) for K in args.Ks for n in args.ns]
    jobs += [("LISTA", K, n, d) for K in args.Ks for n in args.ns for d in args.depths]
    jobs += [("LISTA", K, middle, d) for K in args.Ks for d in args.extra_depths if d not in args.depths]
    started = time.perf_counter()
    for method, K, n, depth in jobs:
        key = f"{method}/K{K}/n{n}" + (f"/L{depth}" if depth else "")
        if key in cells:
            continue
        problem = InexactInputProblem(K=K, n=n)
        t = time.perf_counter()
        out = run_firenet(problem) if method == "FIRENET" else run_lista(problem, depth, args, work)
        cells[key] = {"method": method, "K": K, "n": n, "depth": depth or None, **out,
                      "floor": problem.floor(), "gap": problem.gap(),
                      "input_distance": problem.input_distance(), "seconds": time.perf_counter() - t}
        write_json(path, payload)
        print(f"{key}: err {out['err']:.3g} worst {out['worst']:.3g} (floor {problem.floor():.3g})",
              flush=True)
    payload["seconds_this_run"] = time.perf_counter() - started
    write_json(path, payload)
    print(table(cells))
    print(f"wrote {path}")


def table(cells: dict) -> str:
    """The markdown table of all cells, by K, n, method."""
    head = ("| K | n | method | err = d(Psi(y, A_n), Xi(A, y)) | worst of x_1, x_2 | floor | 10^-K | "
            "10^-(K-1) | 10^-(K-2) | digits K / K-1 / K-2 |")
    lines = [head, "|" + "---|" * 10]
    order = sorted(cells.values(), key=lambda c: (c["K"], c["n"], c["method"], c["depth"] or 0))
    for c in order:
        k = c["K"]
        marks = "/".join("yes" if c["err"] < 10.0 ** (-k + i) else "no" for i in range(3))
        name = c["method"] + (f" L={c['depth']}" if c["depth"] else "")
        lines.append(f"| {k} | {c['n']} | {name} | {c['err']:.3e} | {c['worst']:.3e} | {c['floor']:.3e} | "
                     f"1e-{k} | {10.0 ** (1 - k):.0e} | {10.0 ** (2 - k):.0e} | {marks} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
