"""Audit at scale: batched tests, the Ray executor, memory and report size, and the demo's time.

    python benchmarks/audit_scale.py [--tasks batched_unet batched_firenet ray memory demo]
                                     [--images 16] [--steps 25] [--ray-steps 10]
                                     [--memory-images 20 100] [--out DIR]

On the demo's operator (25% variable-density Fourier at 128 x 128) and generated ellipse
phantoms (``ellipses:0-N``), in one run on this machine:

* ``batched_unet``, ``batched_firenet`` (a): the audit's ``worst_case`` unit with the demo's
  options (4 budgets, ``--steps`` steps, one restart, the not-rare check) on ``--images``
  images, one image per unit (``batch_size=1``: the 4 budgets of one image per forward pass)
  against all of them in one unit (``batch_size=--images``). Throughput ratio = per-image time
  / batched time (same work); the amplifications of both paths are compared (max abs diff).
  Target for the U-Net: >= 1.5x.
* ``ray`` (b): the audit of 3 methods (U-Net, FIRENET (lam 1e-2, p 5), TV) x (accuracy,
  worst_case with ``--ray-steps`` steps, random_noise) on ``--images`` images (chunks of 8),
  serially (2 torch threads) and with ``executor="ray"`` on a local 2-CPU Ray instance started by
  the run (its start-up counted). Wall ratio ray / serial (target <= 1.2) and the largest
  difference between the two runs' ``results.json`` entries (target: equal to float tolerance).
* ``memory`` (c): the demo's 10 methods (TV and l1-wavelet at 30 iterations) x all 6 tests at a
  small search effort (2 steps, 2 draws), on each of ``--memory-images`` images, each audit in a
  fresh process: its peak resident memory, the report's size and the run folder's size. Targets:
  report <= 20 MB for 100 images x 10 methods; peak memory flat in the number of images.
* ``demo`` (d): ``stablerecon demo`` (the CLI, a fresh process) wall time. Target: <= 240 s.

Each task is written to ``DIR/audit_scale.json`` (atomically) as soon as it finishes; a rerun
with the same settings keeps the finished ones. The table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import run_tasks  # noqa: E402

from stablerecon.audit.registry import TESTS, UnitContext  # noqa: E402
from stablerecon.config import AuditConfig  # noqa: E402
from stablerecon.config_base import validate  # noqa: E402
from stablerecon.recipes import build_method, build_operator  # noqa: E402
from stablerecon.runner import demo_config  # noqa: E402

TASKS = ["batched_unet", "batched_firenet", "ray", "memory", "demo"]
OPERATOR = {"kind": "fourier", "size": 128, "mask": "variable_density", "rate": 0.25, "seed": 0}
UNET = {"name": "U-Net", "kind": "pretrained", "weights": "unet_fourier128"}
FIRENET_STABLE = {"name": "FIRENET (lam 1e-2, p 5)", "kind": "firenet", "lam": 0.01, "inner": 5}
FIRENET_DEFAULT = {"name": "FIRENET (defaults)", "kind": "firenet"}
TV = {"name": "TV", "kind": "tv", "max_iter": 150}


def _config(methods: list[dict], images: int, tests: list[str], **options: object) -> AuditConfig:
    """An audit config (the same dict a YAML file gives) on the demo's operator and options."""
    base = demo_config().options.model_dump(exclude_defaults=True)
    base.pop("tradeoff", None)
    data = {"name": "audit_scale", "operators": [OPERATOR], "methods": methods,
            "images": [f"ellipses:0-{images - 1}"], "tests": tests, "options": {**base, **options}}
    return validate(AuditConfig, data, source="benchmarks/audit_scale.py")


def _batched(spec: dict, args: argparse.Namespace) -> dict:
    config = _config([spec], args.images, ["worst_case"], steps=args.steps)
    op = build_operator(config.operators[0])
    method = build_method(config.methods[0], op)
    x = config.image_set(128).load(range(args.images))
    opts = config.options
    unit = TESTS["worst_case"]
    started = time.perf_counter()
    single = [unit(method, UnitContext(x[i:i + 1], op, opts, ids=[i]))[0] for i in range(args.images)]
    per_image = time.perf_counter() - started
    started = time.perf_counter()
    batched, _ = unit(method, UnitContext(x, op, opts, ids=list(range(args.images))))
    together = time.perf_counter() - started
    amp_single = torch.tensor([v["amplification"] for v in single])[..., 0].T  # [budget][image]
    amp_batched = torch.tensor(batched["amplification"])
    diff = float((amp_single - amp_batched).abs().max())
    row = {"method": spec["name"], "images": args.images, "steps": args.steps,
           "per_image_seconds": round(per_image, 2), "batched_seconds": round(together, 2),
           "throughput_ratio": round(per_image / together, 3), "max_amplification_diff": diff,
           "median_amplification": float(amp_batched[opts.budgets.index(opts.report_budget)].median())}
    print(f"  {spec['name']}: per image {per_image:.1f} s, batched {together:.1f} s, "
          f"ratio {per_image / together:.2f}x, max |amplification diff| {diff:.2e}")
    return row


def _leaves(a: object, b: object, path: str = "", relative: bool = False) -> tuple[float, str]:
    """The largest absolute (or ``relative``: ``|a - b| / max(|a|, |b|, 1e-12)``) difference
    between the numbers of two JSON values, and where."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return float("inf"), f"{path}: keys differ"
        return max((_leaves(a[k], b[k], f"{path}/{k}", relative) for k in a), default=(0.0, path))
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf"), f"{path}: lengths differ"
        pairs = enumerate(zip(a, b, strict=True))
        return max((_leaves(u, v, f"{path}[{i}]", relative) for i, (u, v) in pairs), default=(0.0, path))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        scale = max(abs(float(a)), abs(float(b)), 1e-12) if relative else 1.0
        return abs(float(a) - float(b)) / scale, path
    return (0.0 if a == b else float("inf")), path


def _units(folder: Path) -> dict:
    """The run's finished units, ``"method/test/start-stop" -> values``."""
    doc = json.loads((folder / "results.json").read_text())
    return {"{}/{}/{}-{}".format(e["method"], e["test"], *e["images"]): e["values"] for e in doc["entries"]}


def _ray(args: argparse.Namespace) -> dict:
    from stablerecon.runner import run_audit_config

    config = _config([UNET, FIRENET_STABLE, TV], args.images, ["accuracy", "worst_case", "random_noise"],
                     steps=args.ray_steps, batch_size=8)
    walls, units = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for executor in ("serial", "ray"):
            started = time.perf_counter()
            run_audit_config(config, Path(tmp) / executor, progress=False, executor=executor)
            walls[executor] = time.perf_counter() - started
            timings = json.loads((Path(tmp) / executor / "results.json").read_text())["timings"]
            units[executor] = round(sum(timings.values()), 1)
            print(f"  {executor}: {walls[executor]:.1f} s (units {units[executor]} s)")
        serial, ray = _units(Path(tmp) / "serial"), _units(Path(tmp) / "ray")
        diff, where = _leaves(serial, ray)
        rel, rel_where = _leaves(serial, ray, relative=True)
    row = {"methods": [m.name for m in config.methods], "images": args.images, "steps": args.ray_steps,
           "units": 3 * 3 * -(-args.images // 8), "serial_seconds": round(walls["serial"], 1),
           "ray_seconds": round(walls["ray"], 1), "unit_seconds": units,
           "wall_ratio": round(walls["ray"] / walls["serial"], 3),
           "max_entry_diff": diff, "max_entry_diff_at": where, "max_relative_entry_diff": rel,
           "max_relative_entry_diff_at": rel_where}
    print(f"  ray / serial {row['wall_ratio']:.2f}x; largest entry difference {diff:.2e} at {where}, "
          f"relative {rel:.2e} at {rel_where}")
    return row


_MEMORY_CHILD = """
import json, resource, sys, time
from pathlib import Path
from stablerecon.config import AuditConfig
from stablerecon.config_base import validate
from stablerecon.runner import run_audit_config
config = validate(AuditConfig, json.loads(sys.argv[1]))
started = time.perf_counter()
run_audit_config(config, sys.argv[2], progress=False)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _memory(args: argparse.Namespace) -> dict:
    methods = []
    for spec in demo_config().methods:
        data = spec.model_dump(exclude_defaults=True)
        if data["kind"] in ("tv", "fista"):
            data["max_iter"] = 30
        methods.append(data)
    rows = []
    for n in args.memory_images:
        config = _config(methods, n, list(demo_config().tests), steps=2, draws=2, not_rare_draws=1)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            spec = json.dumps(config.model_dump(mode="json"))
            proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, spec, str(out)], capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"the {n}-image audit failed:\n{proc.stderr[-4000:]}")
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            row = {"images": n, "methods": len(methods), "seconds": round(child["seconds"], 1),
                   "peak_rss_mb": round(child["peak_rss_mb"], 1),
                   "report_mb": round((out / "report.html").stat().st_size / 2**20, 2),
                   "run_folder_mb": round(_folder_mb(out), 1)}
        rows.append(row)
        print(f"  {n} images x {len(methods)} methods: {row['seconds']} s, peak RSS {row['peak_rss_mb']} MB, "
              f"report {row['report_mb']} MB, run folder {row['run_folder_mb']} MB")
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    return {"runs": rows, "peak_ratio_last_over_first": round(ratio, 3)}


def _demo(args: argparse.Namespace) -> dict:
    cli = Path(sys.executable).parent / "stablerecon"
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "stablerecon.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.run([*command, "demo", "--out", str(Path(tmp) / "demo"), "--no-progress"],
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"stablerecon demo failed:\n{proc.stderr[-4000:]}")
        timings = json.loads((Path(tmp) / "demo" / "results.json").read_text())["timings"]
        report_mb = (Path(tmp) / "demo" / "report.html").stat().st_size / 2**20
    per_method: dict[str, float] = {}
    for key, seconds in timings.items():
        name = key.split(": ")[0]
        per_method[name] = round(per_method.get(name, 0.0) + seconds, 1)
    units = sum(timings.values())
    print(f"  stablerecon demo: {wall:.1f} s (units {units:.1f} s), report {report_mb:.1f} MB")
    return {"seconds": round(wall, 1), "unit_seconds": round(sum(timings.values()), 1),
            "per_method_seconds": per_method, "report_mb": round(report_mb, 2)}


def _table(payload: dict) -> None:
    t = payload["tasks"]
    print("\n| measure | value | target |\n|---|---|---|")
    for key, name in (("batched_unet", "U-Net"), ("batched_firenet", "FIRENET (defaults)")):
        if key in t:
            r = t[key]
            print(f"| (a) worst case, {name}, {r['images']} images, per image / batched | "
                  f"{r['per_image_seconds']} s / {r['batched_seconds']} s = **{r['throughput_ratio']}x** "
                  f"(max amplification diff {r['max_amplification_diff']:.1e}) | "
                  f"{'>= 1.5x' if key == 'batched_unet' else '-'} |")
    if "ray" in t:
        r = t["ray"]
        rel = r.get("max_relative_entry_diff")
        rel_text = f", relative {rel:.1e}" if rel is not None else ""
        print(f"| (b) Ray (local, 2 CPUs) / serial, {r['units']} units | {r['ray_seconds']} s / "
              f"{r['serial_seconds']} s = **{r['wall_ratio']}x**; max entry diff {r['max_entry_diff']:.1e}"
              f"{rel_text} | <= 1.2x, identical |")
    if "memory" in t:
        for r in t["memory"]["runs"]:
            print(f"| (c) {r['images']} images x {r['methods']} methods: peak RSS, report | "
                  f"{r['peak_rss_mb']} MB, **{r['report_mb']} MB** | report <= 20 MB |")
        ratio = t["memory"]["peak_ratio_last_over_first"]
        print(f"| (c) peak memory, most images / fewest | **{ratio}x** | flat (~1x) |")
    if "demo" in t:
        print(f"| (d) `stablerecon demo` wall | **{t['demo']['seconds']} s** | <= 240 s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=TASKS)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--ray-steps", type=int, default=10)
    parser.add_argument("--memory-images", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if min(args.images, args.steps, args.ray_steps, *args.memory_images) < 1:
        parser.error("--images, --steps, --ray-steps and --memory-images must be positive")
    tasks = {"batched_unet": lambda a: _batched(UNET, a),
             "batched_firenet": lambda a: _batched(FIRENET_DEFAULT, a), "ray": _ray,
             "memory": _memory, "demo": _demo}
    payload = run_tasks(args.out / "audit_scale.json", args, tasks)
    _table(payload)


if __name__ == "__main__":
    main()
