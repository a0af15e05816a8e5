"""Audit configs and the methods and images they name."""

from __future__ import annotations

import pytest
import torch

import stablerecon as sr
from stablerecon.config import AuditConfig, ConfigError, MethodSpec, validate
from stablerecon.recipes import build_images, build_method
from stablerecon.runner import demo_config, operator_folder


def test_every_method_kind_builds_the_method_it_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(32, 0.3, seed=0))
    x = sr.data.ellipses(1, 32, seed=0)
    y = op.A(x)
    zero = build_method(MethodSpec(name="z", kind="zero_filled"), op)
    assert torch.equal(zero(y, op), op.A_dagger(y).real)
    tv = build_method(MethodSpec(name="t", kind="tv", lam=0.02, max_iter=20), op)
    assert torch.allclose(tv(y, op), sr.solvers.SparseReconstructor("tv", op, lam=0.02, max_iter=20)(y, op))
    fire = build_method(MethodSpec(name="f", kind="firenet", restarts=2, inner=3), op)
    assert fire.layers == 6
    unet = build_method(MethodSpec(name="u", kind="pretrained", weights="unet_fourier128"), op)
    assert not unet.training and unet.op is op
    path = sr.training.pretrained_path("unet_fourier128")
    same = build_method(MethodSpec(name="c", kind="checkpoint", weights=str(path)), op)
    assert torch.equal(same(y, op), unet(y, op))


def test_images_by_name() -> None:
    images = build_images(["shepp_logan", "ellipses:4", "camera"], 32)
    assert torch.equal(images["shepp_logan"], sr.data.shepp_logan(32))
    assert torch.equal(images["ellipses:4"], sr.data.ellipses(1, 32, seed=4))
    assert torch.equal(images["camera"], sr.data.image("camera", size=32))


@pytest.mark.parametrize(("data", "field"), [
    ({"methods": []}, "methods"),
    ({"methods": [{"name": "a", "kind": "tv"}, {"name": "a", "kind": "fista"}]}, "unique"),
    ({"methods": [{"name": "a", "kind": "pretrained", "weights": "nope"}]}, "methods.0"),
    ({"methods": [{"name": "a", "kind": "tv", "weights": "x"}]}, "methods.0"),
    ({"methods": [{"name": "a", "kind": "zero_filled", "lam": 0.1}]}, "methods.0"),
    ({"methods": [{"name": "a", "kind": "tv"}], "images": ["ellipses:x"]}, "images"),
    ({"methods": [{"name": "a", "kind": "tv"}], "images": ["camera", "camera"]}, "images"),
    ({"methods": [{"name": "a", "kind": "tv"}], "operators": [{"kind": "blur", "size": 32}]}, "sampling"),
    ({"methods": [{"name": "a", "kind": "tv"}], "tests": ["speed"]}, "tests.0"),
    ({"methods": [{"name": "a", "kind": "tv"}], "options": {"budgets": [-0.1]}}, "options.budgets"),
    ({"methods": [{"name": "a", "kind": "tv"}], "options": {"detail": {"contrast": 0}}}, "options.detail"),
])
def test_bad_audit_configs_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        validate(AuditConfig, data)


def test_demo_config_is_the_documented_audit() -> None:
    cfg = demo_config()
    assert [o.kind for o in cfg.operators] == ["fourier"] and cfg.operators[0].size == 128
    assert cfg.operators[0].rate == 0.25
    kinds = {m.kind for m in cfg.methods}
    assert {"pretrained", "firenet", "tv"} <= kinds
    assert {"unet_fourier128", "itnet_fourier128"} <= {m.weights for m in cfg.methods}
    assert {"shepp_logan", "camera", "brick"} <= set(cfg.images)
    assert operator_folder(cfg.operators[0], 0) == "00-fourier-128-variable_density-0.25"


def test_several_operators_get_one_folder_each_and_an_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stablerecon.runner import run_audit_config

    cfg = validate(AuditConfig, {
        "name": "two",
        "operators": [{"kind": "fourier", "size": 16, "rate": 0.3},
                      {"kind": "hadamard", "size": 16, "rate": 0.3}],
        "methods": [{"name": "zero-filled", "kind": "zero_filled"}],
        "images": ["ellipses:1"],
        "tests": ["accuracy", "worst_case"],
        "options": {"steps": 3, "restarts": 1},
    })
    results = run_audit_config(cfg, tmp_path, progress=False)
    folders = [tmp_path / operator_folder(s, i) for i, s in enumerate(cfg.operators)]
    assert [r.path for r in results] == folders
    assert all((f / "report.html").is_file() for f in folders)
    index = (tmp_path / "index.html").read_text()
    assert all(f"{f.name}/report.html" in index for f in folders)
    # zero-filling of a subsampled orthonormal transform: amplification at most 1
    for r in results:
        assert r.summary()[0]["amplification"] <= 1 + 1e-5
