"""Posterior estimation with invertible networks: the acceptance measurements of ``stablerecon.posterior``.

Usage::

    python benchmarks/posterior.py [--tasks gmm ablation ik linear speed] [--quick]
        [--threads N] [--out benchmarks/results]

Tasks (each trains its own models; every training run is timed and stays under 10 minutes on
2 CPU cores at the default settings):

* ``gmm``: the 8-mode Gaussian mixture with ``some`` labels. For the INN (bidirectional
  training, :func:`~stablerecon.posterior.training.train_inn`, with the paper's losses and the
  likelihood term for ``--gmm-mixed-steps``, and with the likelihood term alone for
  ``--gmm-steps``) and the cINN (``--gmm-steps``): forward label
  accuracy (INN only), the share of the samples of the 4-mode label that each of its modes
  receives, the share outside 3 sigma of the correct modes (exact samples: 1.1%), the mean and
  std of the latent ``z`` of test pairs, and the MMD to the true conditional (average over the
  5 labels, 1000 samples each, the same kernel as training).
* ``ablation``: the INN trained with ``L_y + L_z`` only, ``L_x`` only and all losses (the
  paper's weights; "all" trains the forward losses for the first half and then adds ``L_x``, as
  the paper's toy code does), ``--ablation-steps`` each: forward accuracy and MMD to the true
  conditional.
* ``ik``: inverse kinematics of the 4-DoF arm on 50 test points against a rejection-ABC
  reference (``--abc-proposals`` prior draws, the 1000 nearest kept): ``Err_post`` (MMD to ABC)
  and ``Err_resim`` (mean squared end-point error of the samples) for the cINN
  (``--ik-steps``), the INN (``--ik-inn-steps``, the same time budget: its steps cost about 3x
  more), the MC-dropout point-estimate network and the prior.
* ``linear``: a linear-Gaussian problem with an analytic posterior: median ``|e_cal|`` against
  the sampling floor ``0.26 / sqrt(N)``, ``e_cal(68%)``, the SBC KS p-value, and the same at
  ``z`` scaled by 0.8 and 1.2 (the metric must see both).
* ``speed``: training time until the median ``|e_cal|`` on the linear-Gaussian problem falls
  below 1% while the 68% intervals are at most 10% wider than the exact posterior's (the prior
  itself is calibrated on average, so calibration alone says nothing about training; checked
  every ``--check-every`` steps on 2000 test points, evaluation time excluded), and posterior
  samples per second at inference, for the INN and the cINN.
* ``digits``: 8 x 8 digits, 50% inpainting and 32 Gaussian projections with 1% noise, a cINN
  per operator (``--digits-steps``): the share of the posterior sample variance in ker A, the
  posterior std on unobserved against observed pixels, calibration, and the MSE of the
  posterior mean (:class:`~stablerecon.posterior.PosteriorMean`) against ``A^+ y``.

Each finished task is written at once (atomically) to ``posterior.json``; a rerun skips
finished tasks (the settings must match), so an interrupted run resumes. ``--quick`` shortens
every schedule (for the test suite; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _results import run_tasks

from stablerecon.posterior import (
    INN,
    ConditionalINN,
    DigitsProblem,
    DropoutRegressor,
    GaussianMixture,
    InverseKinematics,
    LinearGaussian,
    LossWeights,
    PosteriorMean,
    calibration_error,
    posterior_error,
    rejection_abc,
    resimulation_error,
    sbc_test,
    train_inn,
)
from stablerecon.posterior.mmd import mmd

TASKS = ["gmm", "ablation", "ik", "linear", "speed", "digits"]
NATURAL_OUTSIDE_3SIGMA = float(np.exp(-4.5))  # P(|e| > 3 sigma) for an isotropic 2-D Gaussian


def _r(v: float, digits: int = 5) -> float:
    return float(round(float(v), digits))


# ----------------------------------------------------------------------------- models

def gmm_inn(steps: int, weights: LossWeights, seed: int = 0, batch: int = 500, blocks: int = 8,
            hidden: int = 128, x_start: float = 0.0) -> tuple[INN, float]:
    """The INN of the 8-mode problem (``some`` labels) and its training time in seconds."""
    problem = GaussianMixture("some")
    torch.manual_seed(seed)
    model = INN(2, problem.dim_y, 2, blocks=blocks, hidden=hidden, seed=seed)
    # with the likelihood term: noise 0.2 on y and the padding (its base densities); the paper's
    # losses alone: small y noise, as in its toy code, and exact zero padding (with noisy padding
    # they can take z from the padding noise)
    y_noise, pad_noise = (0.2, 0.2) if weights.likelihood else (0.05, 0.0)
    t = time.perf_counter()
    lr = 1e-3 if weights.likelihood else 5e-4
    train_inn(model, problem, steps=steps, batch=batch, lr=lr, weights=weights, x_start=x_start,
              y_noise=y_noise, pad_noise=pad_noise, seed=seed, progress=False)
    return model, time.perf_counter() - t


def gmm_cinn(steps: int, seed: int = 0) -> tuple[ConditionalINN, float]:
    problem = GaussianMixture("some")
    torch.manual_seed(seed)
    model = ConditionalINN(2, problem.dim_y, blocks=8, hidden=128, seed=seed)
    t = time.perf_counter()
    model.fit(problem, steps=steps, batch=500, lr=1e-3, seed=seed, progress=False)
    return model, time.perf_counter() - t


def gmm_metrics(model: INN | ConditionalINN, n: int = 4000) -> dict:
    """Label accuracy, mode shares and tails of the shared label, latent moments, MMD."""
    problem = GaussianMixture("some")
    x, y = problem.sample_joint(n, seed=5)
    out: dict = {}
    if isinstance(model, INN):
        with torch.no_grad():
            out["accuracy"] = _r((model.predict(x).argmax(1) == y.argmax(1)).double().mean())
            z = model.latent(x, seed=6)
    else:
        with torch.no_grad():
            z = model.flow((x.float() - model.x_mean) / model.x_std,
                           (y.float() - model.y_mean) / model.y_std)[0]
    out["z_mean"] = [_r(v, 4) for v in z.mean(0).tolist()]
    out["z_std"] = [_r(v, 4) for v in z.std(0).tolist()]
    shared = torch.nn.functional.one_hot(torch.tensor([4]), problem.dim_y).double()
    s = model.sample(shared, n, seed=1)[0].double()
    modes = problem.mode_of(s)
    out["shares"] = [_r(v, 4) for v in (torch.bincount(modes, minlength=8)[4:].double() / n).tolist()]
    far = (s - problem.means[modes]).norm(dim=1) > 3 * problem.std
    out["outside_3sigma"] = _r(((modes < 4) | far).double().mean(), 4)
    labels = torch.eye(problem.dim_y, dtype=torch.float64)
    samples = model.sample(labels, 1000, seed=2).double()
    exact = problem.sample_posterior(labels, 1000, seed=3)
    out["mmd_true"] = _r(np.mean([float(mmd(samples[i], exact[i])) for i in range(problem.dim_y)]), 6)
    return out


# ----------------------------------------------------------------------------- tasks

def task_gmm(args: argparse.Namespace) -> dict:
    rows = {}
    variants = {
        "INN (paper losses + likelihood)": (LossWeights(likelihood=args.likelihood), args.gmm_mixed_steps),
        "INN (likelihood only)": (LossWeights(0.0, 0.0, 0.0, 0.0, args.likelihood), args.gmm_steps),
    }
    for name, (weights, steps) in variants.items():
        model, secs = gmm_inn(steps, weights)
        rows[name] = {"steps": steps, "train_s": _r(secs, 1)} | gmm_metrics(model)
        print(f"  {name}", rows[name])
    cinn, secs = gmm_cinn(args.gmm_steps)
    rows["cINN"] = {"steps": args.gmm_steps, "train_s": _r(secs, 1)} | gmm_metrics(cinn)
    print("  cINN", rows["cINN"])
    rows["natural_outside_3sigma"] = _r(NATURAL_OUTSIDE_3SIGMA, 4)
    return rows


def task_ablation(args: argparse.Namespace) -> dict:
    """The paper's ablation with its toy code's schedule: the forward losses first, then the
    backward MMD added (``x_start = 0.5`` for "all"); the same steps and a 3-block INN of width
    64 for every variant."""
    variants = {
        "L_y + L_z": (LossWeights(x=0.0), 0.0),
        "L_x only": (LossWeights(y=0.0, z=0.0, reconstruction=0.0), 0.0),
        "all (paper)": (LossWeights(), 0.5),
    }
    rows = {}
    for name, (weights, x_start) in variants.items():
        model, secs = gmm_inn(args.ablation_steps, weights, blocks=3, hidden=64, x_start=x_start)
        m = gmm_metrics(model)
        rows[name] = {"train_s": _r(secs, 1), "accuracy": m["accuracy"], "mmd_true": m["mmd_true"],
                      "outside_3sigma": m["outside_3sigma"], "shares": m["shares"], "z_std": m["z_std"]}
        print(f"  {name:18s}", rows[name])
    return rows


def task_ik(args: argparse.Namespace) -> dict:
    problem = InverseKinematics()
    x_test, y_test = problem.sample_joint(args.ik_points, seed=11)
    t = time.perf_counter()
    ref, dist = rejection_abc(problem, y_test, n=1000, proposals=args.abc_proposals, chunk=200_000, seed=12)
    rows: dict = {"abc": {"seconds": _r(time.perf_counter() - t, 1), "max_distance": _r(dist.max(), 4),
                          "median_distance": _r(dist.median(), 4),
                          "Err_resim": _r(resimulation_error(ref, y_test, problem.forward), 6)}}
    print("  ABC ", rows["abc"])

    def evaluate(name: str, sampler, secs: float | None) -> None:
        s = sampler.sample(y_test, 1000, seed=1).double()
        rows[name] = {"Err_post": _r(posterior_error(s, ref), 5),
                      "Err_resim": _r(resimulation_error(s, y_test, problem.forward), 6)}
        if secs is not None:
            rows[name]["train_s"] = _r(secs, 1)
        print(f"  {name:5s}", rows[name])

    class Prior:
        def sample(self, y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
            return problem.sample_prior(n, seed).unsqueeze(0).repeat(len(y), 1, 1)

    evaluate("prior", Prior(), None)
    torch.manual_seed(0)
    cinn = ConditionalINN(4, 2, blocks=8, hidden=256)
    t = time.perf_counter()
    cinn.fit(problem, steps=args.ik_steps, batch=512, lr=1e-3, progress=False)
    evaluate("cINN", cinn, time.perf_counter() - t)
    torch.manual_seed(0)
    inn = INN(4, 2, 2, blocks=8, hidden=256)
    t = time.perf_counter()
    train_inn(inn, problem, steps=args.ik_inn_steps, batch=512, lr=1e-3,
              weights=LossWeights(likelihood=args.likelihood), y_noise=0.01, pad_noise=0.01, progress=False)
    evaluate("INN", inn, time.perf_counter() - t)
    torch.manual_seed(0)
    dropout = DropoutRegressor(4, 2)
    t = time.perf_counter()
    dropout.fit(problem, steps=args.ik_inn_steps // 2, batch=512, lr=1e-3, progress=False)
    evaluate("dropout", dropout, time.perf_counter() - t)
    return rows


def _noise_in_std_units(problem: LinearGaussian) -> float:
    """The observation noise in the INN's standardised ``y`` units (its ``y_noise``)."""
    return problem.noise_std / float(problem.sample_joint(20_000, seed=0)[1].std(0).mean())


def _linear_eval(model, problem: LinearGaussian, n_test: int, n_samples: int,
                 temperature: float = 1.0) -> dict:
    x, y = problem.sample_joint(n_test, seed=21)
    s = model.sample(y, n_samples, seed=22, temperature=temperature).double()
    cal = calibration_error(s, x)
    p, _ = sbc_test(s, x)
    return {"median_abs_ecal": _r(cal.median_abs), "ecal_68": _r(cal.at_68), "sbc_p": _r(p, 4),
            "floor": _r(0.26 / np.sqrt(n_test))}


def task_linear(args: argparse.Namespace) -> dict:
    problem = LinearGaussian(dim_x=4, dim_y=2, noise_std=0.1, seed=0)
    rows = {}
    class Exact:
        """The analytic posterior, its spread around the mean scaled by ``temperature``."""

        def sample(self, y: torch.Tensor, n: int, seed: int, temperature: float = 1.0) -> torch.Tensor:
            mean = problem.posterior_mean(y)[:, None]
            return mean + temperature * (problem.sample_posterior(y, n, seed) - mean)

    models: dict = {"exact": Exact()}
    torch.manual_seed(0)
    cinn = ConditionalINN(4, 2, blocks=6, hidden=64)
    cinn.fit(problem, steps=args.linear_steps, batch=512, lr=2e-3, progress=False)
    models["cINN"] = cinn
    torch.manual_seed(0)
    inn = INN(4, 2, 2, blocks=6, hidden=64)
    train_inn(inn, problem, steps=args.linear_steps, batch=512, lr=2e-3,
              weights=LossWeights(likelihood=args.likelihood), y_noise=_noise_in_std_units(problem),
              pad_noise=0.01, progress=False)
    models["INN"] = inn
    for name, model in models.items():
        rows[name] = {f"T={t}": _linear_eval(model, problem, args.linear_points, 200, t)
                      for t in (1.0, 0.8, 1.2)}
        print(f"  {name:5s}", rows[name])
    return rows


def task_speed(args: argparse.Namespace) -> dict:
    problem = LinearGaussian(dim_x=4, dim_y=2, noise_std=0.1, seed=0)
    rows = {}
    x, y = problem.sample_joint(2000, seed=31)

    exact_width = calibration_error(problem.sample_posterior(y, 100, seed=33), x).sharpness

    def calibrated(model) -> tuple[float, float]:
        result = calibration_error(model.sample(y, 100, seed=32).double(), x)
        return result.median_abs, result.sharpness / exact_width

    for name in ("cINN", "INN"):
        torch.manual_seed(0)
        model = (ConditionalINN(4, 2, blocks=6, hidden=64) if name == "cINN"
                 else INN(4, 2, 2, blocks=6, hidden=64))
        state = {"train": 0.0, "t": time.perf_counter(), "reached": None, "ecal": []}

        def callback(step: int, _record, model=model, state=state) -> None:
            if (step + 1) % args.check_every or state["reached"] is not None:
                return
            state["train"] += time.perf_counter() - state["t"]
            model.eval()
            value, width = calibrated(model)
            model.train()
            state["ecal"].append((step + 1, _r(value), _r(width, 3)))
            if value < 0.01 and width < 1.1:
                state["reached"] = (step + 1, state["train"])
            state["t"] = time.perf_counter()

        if name == "cINN":
            model.fit(problem, steps=args.speed_steps, batch=512, lr=2e-3, progress=False, callback=callback)
        else:
            train_inn(model, problem, steps=args.speed_steps, batch=512, lr=2e-3,
                      weights=LossWeights(likelihood=args.likelihood), y_noise=_noise_in_std_units(problem),
                      pad_noise=0.01, progress=False, callback=callback)
        y_big = y[:100]
        model.sample(y_big, 10, seed=0)  # warm-up
        t = time.perf_counter()
        model.sample(y_big, 1000, seed=0)
        per_s = 100 * 1000 / (time.perf_counter() - t)
        reached = state["reached"]
        rows[name] = {"exact_width_68": _r(exact_width, 4),
                      "steps_to_1pct": None if reached is None else reached[0],
                      "seconds_to_1pct": None if reached is None else _r(reached[1], 1),
                      "curve": state["ecal"], "samples_per_s": _r(per_s, 0)}
        print(f"  {name:5s}", {k: v for k, v in rows[name].items() if k != "curve"})
    return rows


def task_digits(args: argparse.Namespace) -> dict:
    rows = {}
    settings = {"inpainting 50%": {"operator": "inpainting", "observed": 0.5},
                "gaussian m=32": {"operator": "gaussian", "m": 32}}
    for name, setting in settings.items():
        train = DigitsProblem(split="train", noise_std=0.01, **setting)
        test = DigitsProblem(split="test", noise_std=0.01, **setting)
        torch.manual_seed(0)
        model = ConditionalINN(64, train.dim_y, blocks=6, hidden=128)
        t = time.perf_counter()
        model.fit(train, steps=args.digits_steps, batch=256, lr=1e-3, progress=False)
        secs = time.perf_counter() - t
        x, y = test.sample_joint(200, seed=1)
        samples = model.sample(y, 100, seed=2).double()
        fraction = test.null_space_fraction(samples)
        method = PosteriorMean(model, n_samples=64, op=test.op)
        x_mean = method(y.reshape(len(y), 1, -1).float(), test.op).reshape(len(y), 64).double()
        cal = calibration_error(samples, x)
        rows[name] = {"train_s": _r(secs, 1), "null_space_fraction": _r(fraction.mean(), 4),
                      "null_space_fraction_min": _r(fraction.min(), 4),
                      "mse_posterior_mean": _r((x_mean - x).pow(2).mean(), 5),
                      "mse_dagger": _r((test.dagger(y) - x).pow(2).mean(), 5),
                      "median_abs_ecal": _r(cal.median_abs, 4), "ecal_68": _r(cal.at_68, 4)}
        if test.unobserved.any():
            std, hidden = samples.std(1), test.unobserved.flatten()
            rows[name]["std_unobserved_over_observed"] = _r(std[:, hidden].mean() / std[:, ~hidden].mean(), 2)
        print(f"  {name}", rows[name])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=TASKS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--likelihood", type=float, default=1.0, help="weight of the INN's likelihood term")
    parser.add_argument("--gmm-steps", type=int, default=8000)
    parser.add_argument("--gmm-mixed-steps", type=int, default=2000,
                        help="steps of the INN with the paper's losses and the likelihood term")
    parser.add_argument("--ablation-steps", type=int, default=6000)
    parser.add_argument("--ik-steps", type=int, default=10000, help="cINN training steps on the arm")
    parser.add_argument("--ik-inn-steps", type=int, default=3000,
                        help="INN training steps on the arm (and half of it for the dropout network)")
    parser.add_argument("--ik-points", type=int, default=50)
    parser.add_argument("--abc-proposals", type=int, default=10_000_000)
    parser.add_argument("--linear-steps", type=int, default=2000)
    parser.add_argument("--linear-points", type=int, default=1000)
    parser.add_argument("--speed-steps", type=int, default=3000)
    parser.add_argument("--check-every", type=int, default=100)
    parser.add_argument("--digits-steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.quick:
        for name in ("gmm_steps", "gmm_mixed_steps", "ablation_steps", "ik_steps", "ik_inn_steps",
                     "linear_steps", "speed_steps", "digits_steps"):
            setattr(args, name, 20)
        args.ik_points, args.abc_proposals, args.linear_points, args.check_every = 4, 20_000, 100, 10
    if args.threads:
        torch.set_num_threads(args.threads)
    run_tasks(args.out / "posterior.json", args, {name: globals()[f"task_{name}"] for name in TASKS})

if __name__ == "__main__":
    main()
