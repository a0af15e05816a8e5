"""The papers' claims on our methods at 128 x 128, 25% variable-density Fourier sampling.

- FIRENET in its stable setting: worst-case amplification <= 3 at every budget;
- the jitter trade-off (networks trained with more jitter are less accurate on clean data and
  move less under worst-case perturbations at 2-5% budgets) is reported as measured;
- a small 30/255 detail: whether FIRENET and TV keep it where the U-Net loses it is reported as
  measured.

The numbers are measured, not tuned: ``stablerecon demo`` reports the same quantities on the
demo images.
"""

from __future__ import annotations

import pytest
import torch

import stablerecon as sr
from stablerecon.audit import detail_test, worst_case
from stablerecon.runner import demo_config

SIZE = 128
BUDGETS = [0.005, 0.01, 0.02, 0.05]


@pytest.fixture(scope="module")
def op() -> sr.operators.SubsampledFourier:
    return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(SIZE, 0.25, seed=0))


def _demo_method(name: str, op: object) -> torch.nn.Module:
    from stablerecon.recipes import build_method

    spec = next(m for m in demo_config().methods if m.name == name)
    return build_method(spec, op)


@pytest.mark.slow
def test_firenet_in_its_stable_setting_amplifies_at_most_three(op) -> None:  # type: ignore[no-untyped-def]
    """FIRENET with lam 1e-2 and 5 steps per restart (the setting of its own acceptance tests,
    as in the demo) on a held-out ellipse phantom and camera, at every default budget with the
    default search effort. Measured but not asserted (see the demo report): FIRENET's old,
    more accurate defaults (Haar, lam 2e-3, p 8) reached about 4 and TV about 3.3-4.4 at 0.5-1%
    budgets."""
    method = _demo_method("FIRENET (lam 1e-2, p 5)", op)
    x = torch.cat([sr.data.ellipses(1, SIZE, seed=100), sr.data.image("camera", size=SIZE)])
    res = worst_case(method, op.A(x), op, budgets=BUDGETS, steps=40, restarts=1, seed=0)
    print(res.amplification.tolist())
    assert float(res.amplification.max()) <= 3.0


@pytest.mark.slow
def test_jitter_tradeoff_is_reported_as_measured(op) -> None:  # type: ignore[no-untyped-def]
    """U-Nets trained with jitter 0 and increasing jitter (otherwise identical presets) on 4
    held-out phantoms. The theory says clean PSNR and the worst-case change at 2-5% both fall
    with jitter; the report states whether that ordering holds on the measured numbers, which
    are checked here against a direct computation."""
    from stablerecon.audit import run
    from stablerecon.report import findings

    chain = [n for n in ("unet_fourier128", "unet_fourier128_jitter2", "unet_fourier128_jitter5",
                         "unet_fourier128_jitter10") if n in sr.training.available_pretrained()]
    assert len(chain) >= 3
    nets = {n: sr.training.pretrained(n) for n in chain}
    x = sr.data.ellipses(4, SIZE, seed=12345)
    result = run(nets, op, x, tests=["accuracy", "worst_case"], progress=False,
                 options={"budgets": [0.02, 0.05], "steps": 20, "restarts": 1, "tradeoff": chain})
    with torch.no_grad():
        direct = [float(sr.metrics.psnr(net(op.A(x), op), x, data_range=1.0).mean()) for net in nets.values()]
    psnrs = [sum(result.get(n, "accuracy")["clean"]["psnr"]) / 4 for n in chain]
    assert psnrs == pytest.approx(direct, abs=1e-4)
    changes = [[sum(v) / 4 for v in result.get(n, "worst_case")["relative_error"]] for n in chain]
    print("PSNR", psnrs, "worst-case relative change at 2%, 5%", changes)
    ordered = all(a > b for a, b in zip(psnrs, psnrs[1:], strict=False)) and all(
        all(a[k] > b[k] for a, b in zip(changes, changes[1:], strict=False)) for k in range(2))
    note = next(n for n in findings(result) if n.startswith("Accuracy-stability trade-off"))
    assert ("is reproduced" in note) == ordered
    assert ("NOT reproduced" in note) == (not ordered)


@pytest.mark.slow
def test_detail_claim_is_reported_as_measured(op) -> None:  # type: ignore[no-untyped-def]
    """The demo's detail case (a soft 30/255 blob at the centre of each demo image): the claim
    "FIRENET and TV recover >= 80% where the U-Net recovers < 50%" is checked on the numbers,
    and the report states the cases where it holds, or that there are none (measured here:
    none; every method keeps this blob, see the closing note of the audit issue)."""
    from stablerecon.audit import run
    from stablerecon.recipes import build_images
    from stablerecon.report import findings

    cfg = demo_config()
    images = build_images(cfg.images, SIZE)
    methods = {name: _demo_method(name, op) for name in ("U-Net", "FIRENET (lam 1e-2, p 5)", "TV")}
    options = cfg.options.model_copy(update={"tradeoff": []})
    result = run(methods, op, images, tests=["detail"], options=options, progress=False)
    rec = {m: torch.tensor(result.get(m, "detail")["recovered"]) for m in methods}
    print({k: [round(float(v), 3) for v in r] for k, r in rec.items()})
    # independent recomputation of one entry
    direct = detail_test(methods["U-Net"], torch.cat(list(images.values())), op, kind=cfg.options.detail.kind,
                         contrast=cfg.options.detail.contrast, position=(SIZE // 2, SIZE // 2),
                         size=cfg.options.detail.size).recovered
    assert torch.allclose(direct.double(), rec["U-Net"].double(), atol=1e-6)
    cases = (rec["FIRENET (lam 1e-2, p 5)"] >= 0.8) & (rec["TV"] >= 0.8) & (rec["U-Net"] < 0.5)
    note = next(n for n in findings(result) if n.startswith("Detail"))
    if bool(cases.any()):
        for j in torch.nonzero(cases).flatten().tolist():
            assert f"on {result.images[j]}," in note
    else:
        assert "on no image" in note
