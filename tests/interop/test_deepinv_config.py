"""DeepInverse physics and models named in a config (``kind: deepinv``):
:func:`operator_from_target` and :func:`method_from_target`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

dinv = pytest.importorskip("deepinv")

import stablerecon as sr  # noqa: E402
from stablerecon.interop.deepinv import DeepinvMethod, from_deepinv, method_from_target, operator_from_target  # noqa: E402

N = 32

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_tomography_gets_its_width_from_size() -> None:
    op = operator_from_target("deepinv.physics.Tomography", {"angles": 12, "normalize": False}, size=N)
    reference = from_deepinv(dinv.physics.Tomography(angles=12, img_width=N, normalize=False))
    assert op.in_shape == (1, N, N) and op.out_shape == reference.out_shape
    x = sr.data.shepp_logan(N)
    torch.testing.assert_close(op.A(x), reference.A(x))
    same = operator_from_target("deepinv.physics:Tomography",
                                {"angles": 12, "normalize": False, "img_width": N}, size=64)  # args win
    assert same.in_shape == (1, N, N)


def test_mri_mask_from_deepinvs_generator() -> None:
    op = operator_from_target("deepinv.physics.MRI", {"mask": {"acceleration": 4, "seed": 3}}, size=N)
    generator = dinv.physics.generator.GaussianMaskGenerator((N, N), acceleration=4)
    expected = generator.step(batch_size=1, seed=3)["mask"]
    torch.testing.assert_close(op.mask[:, :1], expected)
    assert op.is_complex and op.in_shape == (1, N, N) and op.out_shape == (1, int(expected.sum()))
    # seeded: the same mask again; 'rate' is 1 / acceleration; other generators by name
    again = operator_from_target("deepinv.physics.MRI", {"mask": {"rate": 0.25, "seed": 3}}, size=N)
    torch.testing.assert_close(again.mask, op.mask)
    lines = operator_from_target("deepinv.physics.MRI", {"mask": {"acceleration": 4, "kind": "equispaced"}},
                                 size=N)
    assert float(lines.mask.mean()) == pytest.approx(0.25, abs=0.05)
    # a mask given as 0/1 rows, and no mask at all (full sampling of size x size)
    rows = torch.eye(N).tolist()
    assert float(operator_from_target("deepinv.physics.MRI", {"mask": rows}, size=N).mask.sum()) == 2 * N
    full = operator_from_target("deepinv.physics.MRI", {}, size=N)
    assert full.in_shape == (1, N, N) and float(full.mask.mean()) == 1.0


def test_file_target_and_free_size_physics(tmp_path: Path) -> None:
    (tmp_path / "physics.py").write_text(
        "import torch, deepinv\n"
        "def make(width=3):\n"
        "    box = torch.ones(1, 1, width, width) / width**2\n"
        "    return deepinv.physics.Blur(filter=box, padding='circular')\n")
    op = operator_from_target("physics.py:make", {"width": 5}, size=N, base_dir=tmp_path)
    assert op.in_shape == (1, N, N) and op.out_shape == (1, N, N)  # a blur takes any size: size decides
    x, y = torch.rand(1, 1, N, N), torch.rand(1, 1, N, N)
    assert float((op.A(x) * y).sum()) == pytest.approx(float((x * op.A_adjoint(y)).sum()), rel=1e-5)


@pytest.mark.parametrize(("target", "args", "match"), [
    ("deepinv.physics.NoSuchPhysics", {}, "no attribute 'NoSuchPhysics'"),
    ("Tomography", {}, "must name a class or factory in a module"),
    ("deepinv.physics.Tomography", {"angles": 4, "bogus": 1}, "ignored.*bogus"),
    ("deepinv.physics.Tomography", {"angles": "many"}, "raised"),
    ("deepinv.physics.Physics", {}, "non-linear"),
    ("deepinv.physics.MRI", {"mask": {"acceleration": 4, "rate": 0.25}}, "exactly one of"),
    ("deepinv.physics.MRI", {"mask": {"acceleration": 4, "shape": "lines"}}, "unknown keys"),
    ("deepinv.physics.MRI", {"mask": {"rate": 1.5}}, "'mask.rate'"),
    ("deepinv.physics.MRI", {"mask": {"rate": 0.5, "kind": "spiral"}}, "'mask.kind'"),
])
def test_operator_errors_name_the_target(target: str, args: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        operator_from_target(target, args, size=N)
    assert repr(target.split(".")[-1]) in str(info.value) or target in str(info.value)


def test_method_targets_build_deepinv_models_without_downloading(tmp_path: Path) -> None:
    op = from_deepinv(dinv.physics.Tomography(angles=12, img_width=N, normalize=True))
    x = sr.data.shepp_logan(N)
    # DnCNN would download weights by default: pretrained=None is filled in
    method = method_from_target("deepinv.models.DnCNN", {"in_channels": 1, "out_channels": 1, "depth": 3,
                                                         "nf": 8}, denoiser_sigma=0.05)
    assert isinstance(method, DeepinvMethod) and not method.model.training
    out = method(op.A(x), op)
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    # a factory in a file that takes the operator
    (tmp_path / "model.py").write_text(
        "import deepinv\n"
        "def make(op, scales=2):\n"
        "    assert op.in_shape == (1, 32, 32)\n"
        "    unet = deepinv.models.UNet(1, 1, scales=scales)\n"
        "    return deepinv.models.ArtifactRemoval(unet, mode='adjoint')\n")
    method = method_from_target("model.py:make", {}, base_dir=tmp_path, op=op)
    assert method(op.A(x), op).shape == x.shape
    with pytest.raises(ValueError, match="'deepinv.models.DnCNN'.*denoiser_sigma"):
        method_from_target("deepinv.models.DnCNN", {"in_channels": 1, "out_channels": 1, "depth": 2})
    with pytest.raises(ValueError, match="'deepinv.models.Nope'"):
        method_from_target("deepinv.models.Nope", {})
