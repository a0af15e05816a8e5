"""CSC layers and SDNet: speed against plain convolutions, and test-time robustness.

    python benchmarks/csc.py [--tasks speed robust attack robust_mnist] [--quick] [--out DIR]

Tasks (each written to ``DIR/csc.json`` as soon as it finishes; a rerun with the same settings
keeps the finished ones):

* ``speed``: forward time of a :class:`~stablerecon.csc.CSCLayer` against an
  ``nn.Conv2d`` of the same shape at batch 64 (ratio, alternating runs, minimum of repeats),
  and images per second of SDNet against the plain-convolution baseline (inference, batch 256).
* ``robust``: trains SDNet (``configs/classifiers/sdnet_digits16.yaml``) and the baseline
  (``convnet_digits16.yaml``) with the same budget, sweeps the first CSC layer's ``lam`` on the
  test set under gaussian, shot, speckle and impulse noise at severities 1-5, fits the map from
  the layer's residual to the best validation ``lam`` and measures the per-sample label-free
  choice (:func:`~stablerecon.csc.robust.robustness_study`), for the residual's noise
  level and its mean square, with one pooled fit and with one fit per noise type.
* ``robust_mnist``: the same study on MNIST-5k at 28 x 28 (``sdnet_mnist5k.yaml``,
  ``convnet_mnist5k.yaml``; needs the ``mnist`` extra; not in the default task list).
* ``attack``: an ``l_inf`` PGD attack through the full unrolled network, at the training ``lam``
  and at a raised one, against the baseline: does the ``lam`` gain survive an attacker?
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _results import run_tasks  # noqa: E402
from operators import paired_times  # noqa: E402

from stablerecon.config import ClassifierConfig, load_yaml  # noqa: E402
from stablerecon.csc import CSCLayer, SDNet  # noqa: E402
from stablerecon.csc.robust import lam_of, pgd_linf, robustness_study  # noqa: E402
from stablerecon.data.classification import classification_data  # noqa: E402
from stablerecon.training.classify import accuracy, load_classifier, train_classifier  # noqa: E402

ROOT = Path(__file__).parents[1]
TASKS = ["speed", "robust", "attack", "robust_mnist"]
LAMS = [0.05, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4]


def task_speed(args: argparse.Namespace) -> dict:
    out: dict = {"layers": []}
    for cin, cout, size, steps in [(1, 32, 16, 5), (32, 32, 16, 5), (3, 64, 32, 2)]:
        x = torch.rand(64, cin, size, size)
        csc = CSCLayer(cin, cout, 3, lam=0.1, steps=steps, seed=0)
        conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        csc.lipschitz(size, size)  # cached, as in inference

        def run_csc(csc: CSCLayer = csc, x: torch.Tensor = x) -> object:
            with torch.no_grad():
                return csc(x)

        def run_conv(conv: nn.Module = conv, x: torch.Tensor = x) -> object:
            with torch.no_grad():
                return conv(x)

        t_csc, t_conv = paired_times(run_csc, run_conv, args.repeats)
        row = {"shape": f"{cin}->{cout}, 3x3, {size}x{size}, batch 64", "steps": steps,
               "csc_ms": 1e3 * t_csc, "conv_ms": 1e3 * t_conv, "ratio": t_csc / t_conv,
               "ratio_per_step": t_csc / t_conv / (2 * steps - 1)}
        out["layers"].append(row)
        print(f"  {row['shape']:<34} steps {steps}: CSC {row['csc_ms']:.2f} ms, "
              f"conv {row['conv_ms']:.2f} ms, ratio {row['ratio']:.1f} "
              f"({row['ratio_per_step']:.2f} per convolution pair)")
    x = torch.rand(256, 1, 16, 16)
    nets = {"SDNet": SDNet(csc="first", steps=5).eval(), "baseline": SDNet(csc="none").eval()}

    def run(net: nn.Module) -> object:
        with torch.no_grad():
            return net(x)

    t_sd, t_base = paired_times(lambda: run(nets["SDNet"]), lambda: run(nets["baseline"]), args.repeats)
    out["images_per_s"] = {"SDNet": 256 / t_sd, "baseline": 256 / t_base, "ratio": t_sd / t_base}
    print(f"  SDNet {256 / t_sd:.0f} images/s, baseline {256 / t_base:.0f} images/s (16 x 16, batch 256)")
    return out


def _train(name: str, args: argparse.Namespace) -> tuple[SDNet, ClassifierConfig, float]:
    cfg = load_yaml(ROOT / "configs" / "classifiers" / f"{name}.yaml", ClassifierConfig)
    if args.quick:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})})
    run = args.out / "runs" / name
    t = time.perf_counter()
    train_classifier(cfg, run, progress=False)
    return load_classifier(run / "model.json").eval(), cfg, time.perf_counter() - t


def task_robust(args: argparse.Namespace, dataset: str = "digits16") -> dict:
    sdnet, cfg, t_sd = _train(f"sdnet_{dataset}", args)
    base, _, t_base = _train(f"convnet_{dataset}", args)
    data = classification_data(cfg.dataset, seed=cfg.seed, size=cfg.image_size)
    severities = (1, 3, 5) if args.quick else (1, 2, 3, 4, 5)
    study = robustness_study(sdnet, base, data.x_val, data.y_val, data.x_test, data.y_test, LAMS,
                             severities=severities, seed=args.seed, progress=not args.quick)
    result = study.to_dict() | {"train_s": {"SDNet": t_sd, "baseline": t_base}}
    print(f"  clean: SDNet {study.rows[0]['sdnet']:.4f}, baseline {study.rows[0]['baseline']:.4f}")
    print(f"  {'noise':<10}{'sev':>4}{'base':>8}{'train lam':>10}{'best lam':>10}{'acc':>8}"
          f"{'label-free':>11}")
    for r in study.rows[1:]:
        print(f"  {r['corruption']:<10}{r['severity']:>4}{r['baseline']:>8.3f}{r['sdnet']:>10.3f}"
              f"{r['best_lam']:>10.3f}{r['best_accuracy']:>8.3f}{r['adaptive']:>11.3f}")
    for stat, fits in study.fits.items():
        r2 = ", ".join(f"{k} {f.r2:.3f}" for k, f in fits.items())
        print(f"  {stat:>6} residual -> lam fit R^2: {r2}")
    for stat in study.fits:
        for by in ("pooled", "corruption"):
            print(f"  label-free choice, {stat} statistic, {by} fit: recovers "
                  f"{study.recovered(stat, by):.1%} of the oracle gain "
                  f"({study.adaptive_gain(stat, by):.3f} of {study.oracle_gain():.3f})")
    print(f"  the study's own choice ({study.statistic}, {study.fit_by}, run per sample): "
          f"{study.recovered():.1%}")
    figure = args.out / f"csc_lam_{dataset}.png"
    study.figure().savefig(figure, dpi=90)
    print(f"  figure: {figure}")
    return result


def task_robust_mnist(args: argparse.Namespace) -> dict:
    return task_robust(args, "mnist5k")


def task_attack(args: argparse.Namespace) -> dict:
    sdnet, cfg, _ = _train("sdnet_digits16", args)
    base, _, _ = _train("convnet_digits16", args)
    data = classification_data(cfg.dataset, seed=cfg.seed, size=cfg.image_size)
    n = 100 if args.quick else 450
    x, y = data.x_test[:n], data.y_test[:n]
    out: dict = {"n": n, "steps": args.pgd_steps, "rows": []}
    for eps in args.eps:
        row: dict = {"eps": eps}
        for name, model, lam in (("baseline", base, None), ("SDNet train lam", sdnet, cfg.model.lam),
                                 ("SDNet raised lam", sdnet, 2 * cfg.model.lam)):
            if lam is None:
                x_adv = pgd_linf(model, x, y, eps, args.pgd_steps, seed=args.seed)
                row[name] = accuracy(model, x_adv, y)
            else:
                with lam_of(model, lam):
                    x_adv = pgd_linf(model, x, y, eps, args.pgd_steps, seed=args.seed)
                    row[name] = accuracy(model, x_adv, y)
        out["rows"].append(row)
        print("  eps", eps, {k: round(v, 3) for k, v in row.items() if k != "eps"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=TASKS[:3])
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke run, not a measurement)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run_tasks(args.out / "csc.json", args, {name: globals()[f"task_{name}"] for name in TASKS})

if __name__ == "__main__":
    main()
