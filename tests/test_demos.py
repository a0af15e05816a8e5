"""The embedded demo audits (``stablerecon demo --modality NAME``): each builds its operator,
methods and images, and its shipped network is the one trained for that problem and beats the
operator's own ``A_dagger`` on the demo's held-out image (PSNR by scikit-image)."""

from __future__ import annotations

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from stablerecon.audit.registry import default_tests
from stablerecon.recipes import build_images, build_method
from stablerecon.runner import available_demos, demo_config
from stablerecon.training import pretrained_path, read_checkpoint
from stablerecon.training.data import measure

NEW_MODALITIES = ["multicoil", "radial", "fanbeam"]


def test_every_modality_has_a_demo_and_fourier_stays_the_default() -> None:
    assert set(NEW_MODALITIES) | {"fourier"} <= set(available_demos())
    assert demo_config().operators[0].kind == "fourier"


@pytest.mark.parametrize("modality", NEW_MODALITIES)
def test_demo_builds_and_its_network_beats_the_adjoint_reconstruction(modality: str) -> None:
    torch.manual_seed(0)
    config = demo_config(modality)
    kinds = {m.kind for m in config.methods}
    assert {"pretrained", "firenet", "tv"} <= kinds, "a demo runs FIRENET, TV and a shipped network"
    assert set(default_tests()) <= set(config.tests), "a demo runs every default test"
    spec = config.operators[0]
    op = spec.build()
    methods = {m.name: build_method(m, op) for m in config.methods}
    network = next(m for m in config.methods if m.kind == "pretrained")
    trained_for = read_checkpoint(pretrained_path(network.params.weights)).config.operator
    assert trained_for.model_dump() == spec.model_dump(), "the demo's network was trained for its operator"

    x = next(iter(build_images(config.images[:1], spec.size).values()))
    y = measure(x, op, (config.options.noise,), seed=0)
    with torch.no_grad():
        x_net = methods[network.name](y, op).real.float()
        x_adj = op.A_dagger(y).real.float()
    truth = x[0, 0].numpy()
    p_net = peak_signal_noise_ratio(truth, x_net[0, 0].clamp(0, 1).numpy(), data_range=1.0)
    p_adj = peak_signal_noise_ratio(truth, x_adj[0, 0].clamp(0, 1).numpy(), data_range=1.0)
    assert p_net > p_adj + 3.0, (p_net, p_adj)
