"""How much worst-case search the demo audit needs: strength against cost of the search settings.

    python benchmarks/search_budget.py [--tasks ...] [--settings 5x1 10x1 15x1 25x1 40x1 40x2]
                                       [--timing-steps 10] [--threads 2] [--out DIR]

On the demo's operator (25% variable-density Fourier at 128 x 128) and its 4 images, with the
demo's budgets, seed, step size and reference (``stablerecon.runner.demo_config()``):

* ``sweep_<method>`` (l1-wavelet, both FIRENETs, TV, ItNet, U-Net): the worst-case amplification
  ``[budget][image]`` and the wall time of :func:`stablerecon.audit.worst_case` for every
  ``STEPSxRESTARTS`` in ``--settings``; the last setting is the reference ("default strength").
* ``profile``: where the time of one gradient evaluation of the search goes for TV, l1-wavelet
  and FIRENET (defaults): forward against backward, and the top ops by self CPU time
  (``torch.profiler``).
* ``batched`` (TV, l1-wavelet), ``batched_firenet`` (both FIRENETs): ``--timing-steps`` steps,
  the loop over budgets (the package's ``worst_case``) against all budgets stacked along the
  batch axis in one search (exact: the methods are per item and the random starts are drawn in
  the same order), and a warm-started chain (each larger budget starts from the scaled best
  perturbation of the previous one).

Each task is written to ``DIR/search_budget.json`` as soon as it finishes (a rerun with the same
settings keeps the finished ones); the tables and the recommendation are printed at the end.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from functools import cache
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import run_tasks  # noqa: E402

from stablerecon.audit import worst_case  # noqa: E402
from stablerecon.audit.perturbation import _project, _sphere, _unit, batch_norm  # noqa: E402
from stablerecon.contracts import STABILITY_THRESHOLD  # noqa: E402
from stablerecon.recipes import build_method, build_operator  # noqa: E402
from stablerecon.runner import demo_config  # noqa: E402

ROOT = Path(__file__).parents[1]
METHODS = {"l1": "l1-wavelet", "firenet_default": "FIRENET (defaults)", "tv": "TV",
           "firenet_stable": "FIRENET (lam 1e-2, p 5)", "itnet": "ItNet", "unet": "U-Net"}
TASKS = [f"sweep_{k}" for k in METHODS] + ["profile", "batched", "batched_firenet"]
TOLERANCE = 0.03  # a setting is "as strong" when its amplification is >= (1 - TOLERANCE) x reference


@cache
def context() -> tuple:
    """The demo's operator, images ``x`` (4, 1, 128, 128), measurements ``y``, options and specs."""
    config = demo_config()
    op = build_operator(config.operators[0])
    x = torch.cat(list(config.load_images(config.operators[0].size).values()))
    with torch.no_grad():
        y = op.A(x)
    return config, op, x, y


@cache
def method(key: str) -> object:
    config, op, _, _ = context()
    (spec,) = [m for m in config.methods if m.name == METHODS[key]]
    f = build_method(spec, op)
    y = context()[3][:1].clone().requires_grad_(True)  # warm-up (lazy set-up), outside the timings
    torch.autograd.grad(batch_norm(f(y, op)).sum(), y)
    return f


def parse_setting(s: str) -> tuple[int, int]:
    steps, restarts = s.split("x")
    return int(steps), int(restarts)


def search(key: str, steps: int, restarts: int) -> dict:
    config, op, x, y = context()
    o = config.options
    t = time.perf_counter()
    res = worst_case(method(key), y, op, o.budgets, x=x, reference=o.reference, steps=steps,
                     restarts=restarts, step_size=o.step_size, directions=o.directions, seed=o.seed)
    seconds = time.perf_counter() - t
    return {"steps": steps, "restarts": restarts, "seconds": round(seconds, 2),
            "gradient_free": res.gradient_free, "amplification": res.amplification.tolist(),
            "relative_error": res.relative_error.tolist()}


def sweep(key: str, args: argparse.Namespace) -> dict:
    rows = {}
    for s in args.settings:
        rows[s] = search(key, *parse_setting(s))
        amp = torch.tensor(rows[s]["amplification"])
        print(f"  {METHODS[key]:<24} {s:>5}: {rows[s]['seconds']:7.1f} s, max amplification "
              f"{float(amp.max()):.3f}")
    return {"method": METHODS[key], "budgets": context()[0].options.budgets, "settings": rows}


for _key in METHODS:
    globals()[f"task_sweep_{_key}"] = (lambda k: lambda args: sweep(k, args))(_key)


def task_profile(args: argparse.Namespace) -> dict:
    """Forward and backward time of one search step (batch of 4 images), and the top ops."""
    from torch.profiler import ProfilerActivity, profile

    _, op, _, y = context()
    out = {}
    for key in ("tv", "l1", "firenet_default"):
        f = method(key)
        with torch.no_grad():
            clean = f(y, op)
        e0 = _sphere(y, 0.02 * batch_norm(y), torch.Generator().manual_seed(0))

        def step(f: object = f, clean: torch.Tensor = clean, e0: torch.Tensor = e0) -> tuple[float, float]:
            e = e0.clone().requires_grad_(True)
            t0 = time.perf_counter()
            value = batch_norm(f(y + e, op) - clean)
            t1 = time.perf_counter()
            torch.autograd.grad(value.sum(), e)
            return t1 - t0, time.perf_counter() - t1

        step()  # warm-up
        times = [step() for _ in range(2)]
        fwd, bwd = min(t[0] for t in times), min(t[1] for t in times)
        with torch.no_grad():
            t0 = time.perf_counter()
            f(y + e0, op)
            nograd = time.perf_counter() - t0
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        events = sorted(prof.key_averages(), key=lambda ev: ev.self_cpu_time_total, reverse=True)
        total = sum(ev.self_cpu_time_total for ev in events)
        top = [{"op": ev.key, "calls": ev.count, "self_ms": round(ev.self_cpu_time_total / 1e3, 1),
                "share": round(ev.self_cpu_time_total / total, 3)} for ev in events[:12]]
        out[key] = {"method": METHODS[key], "forward_s": round(fwd, 3), "backward_s": round(bwd, 3),
                    "forward_no_grad_s": round(nograd, 3), "profiled_total_ms": round(total / 1e3, 1),
                    "top_ops": top}
        print(f"  {METHODS[key]}: forward {fwd:.3f} s (no grad {nograd:.3f} s), backward {bwd:.3f} s")
        for row in top[:8]:
            print(f"    {row['op']:<40}{row['calls']:>7}{row['self_ms']:>10.1f} ms"
                  f"{100 * row['share']:>6.1f}%")
    return out


def batched_worst_case(f: object, y: torch.Tensor, op: object, budgets: list[float], *, steps: int,
                       restarts: int, step_size: float, seed: int, warm: int | None = None) -> tuple:
    """``worst_case`` (reference "output", gradients) with all budgets stacked along the batch axis.

    The random starts are drawn in the package's order (budget, then restart), so with the same
    arithmetic per item this is the same search. ``warm``: instead, run the budgets in order, the
    first with ``steps`` and random starts, each later one with ``warm`` steps from the best
    perturbation of the previous budget scaled to the new radius (one restart).
    Returns the amplification ``(budgets, B)``."""
    generator = torch.Generator().manual_seed(seed)
    nb, b = len(budgets), y.shape[0]
    view = (-1, *[1] * (y.ndim - 1))
    with torch.no_grad():
        clean = f(y, op)
    y_norm = batch_norm(y)

    def ascend(yy: torch.Tensor, ref: torch.Tensor, radius: torch.Tensor, starts: list[torch.Tensor],
               n: int) -> torch.Tensor:
        best_val = torch.full_like(radius, -1.0)
        best_e = torch.zeros_like(yy)
        for e in starts:
            for k in range(n + 1):
                e_var = e.detach().requires_grad_(True)
                value_t = batch_norm(f(yy + e_var, op) - ref)
                (grad,) = torch.autograd.grad(value_t.sum(), e_var)
                value = value_t.detach()
                better = value > best_val
                best_val = torch.where(better, value, best_val)
                best_e = torch.where(better.reshape(view), e.detach(), best_e)
                if k == n:
                    break
                length = step_size * radius * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / n)))
                e = _project(e.detach() + length.reshape(view) * _unit(grad), radius)
        return best_e

    if warm is None:
        starts = [[_sphere(y, r * y_norm, generator) for _ in range(restarts)] for r in budgets]
        yy, ref = y.repeat(nb, *[1] * (y.ndim - 1)), clean.repeat(nb, *[1] * (clean.ndim - 1))
        radius = torch.cat([r * y_norm for r in budgets])
        best = ascend(yy, ref, radius, [torch.cat([s[i] for s in starts]) for i in range(restarts)], steps)
        with torch.no_grad():
            change = batch_norm(f(yy + best, op) - ref)
        return (change / batch_norm(best).clamp_min(1e-30)).reshape(nb, b)
    amps, prev = [], None
    for i, r in enumerate(budgets):
        radius = r * y_norm
        if prev is None:
            start = [_sphere(y, radius, generator) for _ in range(restarts)]
            best = ascend(y, clean, radius, start, steps)
        else:
            best = ascend(y, clean, radius, [prev * (r / budgets[i - 1])], warm)
        with torch.no_grad():
            amps.append(batch_norm(f(y + best, op) - clean) / batch_norm(best).clamp_min(1e-30))
        prev = best
    return torch.stack(amps)


def task_batched(args: argparse.Namespace) -> dict:
    return compare_batched(("tv", "l1"), args)


def task_batched_firenet(args: argparse.Namespace) -> dict:
    return compare_batched(("firenet_default", "firenet_stable"), args)


def compare_batched(keys: tuple[str, ...], args: argparse.Namespace) -> dict:
    """Loop over budgets (the package) against budgets in one batch and the warm chain."""
    config, op, _, y = context()
    o = config.options
    kw = {"steps": args.timing_steps, "restarts": 1, "step_size": o.step_size, "seed": o.seed}
    out = {}
    for key in keys:
        f = method(key)
        row = {"method": METHODS[key], "steps": args.timing_steps}
        for name, run in (
            ("loop", lambda f=f: worst_case(f, y, op, o.budgets, steps=args.timing_steps, restarts=1,
                                            step_size=o.step_size, seed=o.seed).amplification),
            ("batched", lambda f=f: batched_worst_case(f, y, op, o.budgets, **kw)),
            ("warm", lambda f=f: batched_worst_case(f, y, op, o.budgets, **kw, warm=args.warm_steps)),
        ):
            t = time.perf_counter()
            amp = run()
            row[name] = {"seconds": round(time.perf_counter() - t, 2), "amplification": amp.tolist()}
            print(f"  {METHODS[key]:<12}{name:<9}{row[name]['seconds']:7.1f} s, max amplification "
                  f"{float(amp.max()):.3f}")
        loop = torch.tensor(row["loop"]["amplification"])
        batched = torch.tensor(row["batched"]["amplification"])
        row["batched_max_rel_diff"] = float(((batched - loop).abs() / loop).max())
        row["warm_steps"] = args.warm_steps
        out[key] = row
    return out


def summary(payload: dict, args: argparse.Namespace) -> None:
    """Tables: per method and setting, the time and the amplification against the reference."""
    tasks = payload["tasks"]
    sweeps = {k: tasks[f"sweep_{k}"] for k in METHODS if f"sweep_{k}" in tasks}
    if sweeps:
        budgets = next(iter(sweeps.values()))["budgets"]
        k2 = budgets.index(0.02) if 0.02 in budgets else len(budgets) // 2
        reference = args.settings[-1]
        print(f"\nworst-case search on the demo's 4 images; ratio to {reference} "
              f"(max over images and budgets / max over images at budget {budgets[k2]}; "
              f"worst per-(image, budget) ratio)")
        print(f"{'method':<26}{'setting':>8}{'time s':>8}{'max amp':>9}{'amp 2%':>8}{'r max':>7}"
              f"{'r 2%':>7}{'r min':>7}  r per budget {budgets}  rel chg 2%")
        ok: dict[str, bool] = {s: True for s in args.settings}
        seconds: dict[str, float] = {s: 0.0 for s in args.settings}
        verdicts: dict[str, bool] = {s: True for s in args.settings}
        for sw in sweeps.values():
            ref = torch.tensor(sw["settings"][reference]["amplification"])
            for s in args.settings:
                row = sw["settings"][s]
                amp = torch.tensor(row["amplification"])
                r_max = float(amp.max() / ref.max())
                r_2 = float(amp[k2].max() / ref[k2].max())
                r_min = float((amp / ref).min())
                good = r_max >= 1 - TOLERANCE and r_2 >= 1 - TOLERANCE
                # the report's findings: the verdict (stable iff max amplification <= threshold)
                # and the worst relative change at the report budget (mean over images)
                stable = float(amp.max()) <= STABILITY_THRESHOLD
                verdicts[s] &= stable == (float(ref.max()) <= STABILITY_THRESHOLD)
                wrc = float(torch.tensor(row["relative_error"])[k2].mean())
                ok[s] &= good
                seconds[s] += row["seconds"]
                per_budget = (amp.amax(1) / ref.amax(1)).tolist()
                row |= {"ratio_max": round(r_max, 4), "ratio_2pct": round(r_2, 4),
                        "ratio_min": round(r_min, 4), "ratio_per_budget": [round(v, 4) for v in per_budget],
                        "within_tolerance": good, "stable": stable,
                        "worst_relative_change_2pct": round(wrc, 5)}
                print(f"{sw['method']:<26}{s:>8}{row['seconds']:>8.1f}{float(amp.max()):>9.3f}"
                      f"{float(amp[k2].max()):>8.3f}{r_max:>7.3f}{r_2:>7.3f}{r_min:>7.3f}"
                      f"  {' '.join(f'{v:6.3f}' for v in per_budget)}{wrc:>8.4f}"
                      f"{'  stable' if stable else '':<8}"
                      f"{'' if good else '  <'}")
        passing = [s for s in args.settings if ok[s]]
        cheapest = min(passing, key=lambda s: seconds[s]) if passing else None
        payload["recommendation"] = {"tolerance": TOLERANCE, "cheapest_setting": cheapest,
                                     "seconds_summed": {s: round(v, 1) for s, v in seconds.items()},
                                     "within_tolerance": ok, "verdicts_as_reference": verdicts}
        print("summed time per setting: " + ", ".join(f"{s} {v:.0f} s" for s, v in seconds.items()))
        print("stable/unstable verdicts as with the reference: "
              + ", ".join(f"{s} {'yes' if v else 'NO'}" for s, v in verdicts.items()))
        print(f"cheapest setting within {100 * TOLERANCE:.0f}% of {reference} for every method: {cheapest}")
    rows = [(k, r) for t in ("batched", "batched_firenet") if t in tasks for k, r in tasks[t].items()]
    if rows:
        print(f"\nbudgets in one batch against the loop over budgets ({args.timing_steps} steps, 1 restart), "
              f"and the warm-started chain ({args.warm_steps} steps after the first budget)")
        for key, row in rows:
            if not isinstance(row, dict):
                continue
            loop = row["loop"]["seconds"]
            if f"sweep_{key}" in tasks:  # the chain's strength against the reference search
                ref = torch.tensor(tasks[f"sweep_{key}"]["settings"][args.settings[-1]]["amplification"])
                amp = torch.tensor(row["warm"]["amplification"])
                row["warm_ratio_max"] = round(float(amp.max() / ref.max()), 4)
                row["warm_ratio_2pct"] = round(float(amp[2].max() / ref[2].max()), 4)
                row["warm_ratio_min"] = round(float((amp / ref).min()), 4)
                print(f"  {row['method']:<12} warm chain / {args.settings[-1]}: "
                      f"max {row['warm_ratio_max']:.3f}, "
                      f"2% {row['warm_ratio_2pct']:.3f}, worst (image, budget) {row['warm_ratio_min']:.3f}")
            print(f"  {row['method']:<12} loop {loop:.1f} s, batched {row['batched']['seconds']:.1f} s "
                  f"(x{loop / row['batched']['seconds']:.2f}, amplification differs by at most "
                  f"{100 * row['batched_max_rel_diff']:.2g}%), warm chain {row['warm']['seconds']:.1f} s "
                  f"max amp {max(map(max, row['warm']['amplification'])):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=TASKS)
    parser.add_argument("--settings", nargs="+", default=["5x1", "10x1", "15x1", "25x1", "40x1", "40x2"],
                        help="STEPSxRESTARTS of the search; the last is the reference")
    parser.add_argument("--timing-steps", type=int, default=10, help="steps of the batched-budgets timing")
    parser.add_argument("--warm-steps", type=int, default=5,
                        help="steps per budget after the first, warm chain")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = args.out / "search_budget.json"
    payload = run_tasks(path, args, {name: globals()[f"task_{name}"] for name in TASKS})
    summary(payload, args)
    from _results import write_json

    write_json(path, payload)


if __name__ == "__main__":
    main()
