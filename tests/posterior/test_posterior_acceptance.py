"""Posterior quality of trained INNs against exact posteriors and an ABC reference.

These are the acceptance measurements at a size the test suite can afford (about a minute
each on one thread); ``benchmarks/posterior.py`` runs them at full length and reports every
number. Each check compares against an independent reference: the exact posterior of the
8-mode mixture, a closed-form linear posterior, or rejection ABC.
"""

from __future__ import annotations

import pytest
import torch

from stablerecon.posterior import (
    INN,
    ConditionalINN,
    GaussianMixture,
    InverseKinematics,
    LossWeights,
    posterior_error,
    rejection_abc,
    resimulation_error,
    train_inn,
)
from stablerecon.posterior.mmd import mmd

ONLY_LIKELIHOOD = LossWeights(y=0.0, z=0.0, x=0.0, reconstruction=0.0, likelihood=1.0)


def _gmm_inn(weights: LossWeights, steps: int, blocks: int = 6) -> INN:
    problem = GaussianMixture("some")
    torch.manual_seed(0)
    model = INN(2, problem.dim_y, 2, blocks=blocks, hidden=128)
    train_inn(model, problem, steps=steps, batch=500, lr=1e-3, weights=weights, y_noise=0.2, pad_noise=0.2,
              progress=False)
    return model


@pytest.mark.slow
def test_inn_recovers_the_modes_of_the_shared_label(one_thread: None) -> None:
    """8 modes, ``some`` labels: the forward model is exact, the latent is standard normal,
    and the 4-mode label's samples split evenly over its own modes only (exact posterior as
    the reference for the MMD)."""
    problem = GaussianMixture("some")
    model = _gmm_inn(ONLY_LIKELIHOOD, 1500)
    x, y = problem.sample_joint(4000, seed=5)
    accuracy = (model.predict(x).argmax(1) == y.argmax(1)).double().mean()
    assert accuracy >= 0.99
    z = model.latent(x)
    assert z.mean(0).abs().max() < 0.05
    assert ((z.std(0) - 1).abs() < 0.05).all()
    shared = torch.nn.functional.one_hot(torch.tensor([4]), problem.dim_y).double()
    samples = model.sample(shared, 4000, seed=1)[0].double()
    modes = problem.mode_of(samples)
    shares = torch.bincount(modes, minlength=8).double() / 4000
    assert shares[:4].sum() < 0.01  # modes of other labels
    assert ((shares[4:] - 0.25).abs() < 0.05).all()
    labels = torch.eye(problem.dim_y, dtype=torch.float64)
    exact = problem.sample_posterior(labels, 800, seed=3)
    prior = problem.sample_prior(800, seed=4)
    learned = model.sample(labels, 800, seed=2).double()
    for i in range(problem.dim_y):  # far closer to the true conditional than the prior is
        assert mmd(learned[i], exact[i]) < 0.05 * mmd(prior, exact[i])


@pytest.mark.slow
def test_ablation_lx_alone_learns_no_forward_model(one_thread: None) -> None:
    """Without ``L_y`` nothing supervises the ``y`` outputs directly (the backward MMD ties
    them to the labels only loosely): the forward accuracy stays far below the 99% of the
    acceptance, while ``L_y + L_z`` learns the labels in the same 500 steps."""
    problem = GaussianMixture("some")
    x, y = problem.sample_joint(2000, seed=5)
    only_x = _gmm_inn(LossWeights(y=0.0, z=0.0, reconstruction=0.0), 500, blocks=4)
    y_and_z = _gmm_inn(LossWeights(x=0.0), 500, blocks=4)
    acc_x = (only_x.predict(x).argmax(1) == y.argmax(1)).double().mean()
    acc_yz = (y_and_z.predict(x).argmax(1) == y.argmax(1)).double().mean()
    print(f"forward accuracy: L_x only {acc_x:.3f}, L_y + L_z {acc_yz:.3f}")
    assert acc_x < 0.9 and acc_yz > 0.99


@pytest.mark.slow
def test_cinn_on_inverse_kinematics_against_abc(one_thread: None) -> None:
    """Inverse kinematics, 5 test points, ABC from 500k prior draws as the reference: a short
    cINN training beats sampling the prior by far in both ``Err_post`` and ``Err_resim``."""
    problem = InverseKinematics()
    _, y = problem.sample_joint(5, seed=11)
    ref, dist = rejection_abc(problem, y, n=500, proposals=500_000, chunk=100_000, seed=12)
    torch.manual_seed(0)
    model = ConditionalINN(4, 2, blocks=6, hidden=128)
    model.fit(problem, steps=1200, batch=256, lr=1e-3, progress=False)
    samples = model.sample(y, 500, seed=1).double()
    prior = problem.sample_prior(500, seed=3).unsqueeze(0).repeat(5, 1, 1)
    assert posterior_error(samples, ref) < 0.2 * posterior_error(prior, ref)
    resim = resimulation_error(samples, y, problem.forward)
    assert resim < 0.02 * resimulation_error(prior, y, problem.forward)
