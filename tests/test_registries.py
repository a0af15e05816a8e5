"""One registry per extension point: a new method kind, operator kind and audit test are each one
registration, and then work from a YAML config, from ``stablerecon list`` and from the audit.

The new entries are checked against closed forms: the operator ``A = c I`` and the method
``x_hat = A^* y / c^2`` reconstruct exactly (PSNR limited only by float32 rounding), and the new
test's number, ``||x_hat|| / ||x||``, is 1 for an exact inverse and ``s`` for ``s`` times it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from stablerecon.audit import TESTS, UnitContext
from stablerecon.audit.perturbation import batch_norm
from stablerecon.cli import app
from stablerecon.config import AuditConfig, ConfigError, load_yaml, validate
from stablerecon.config_base import PositiveFloat, StrictModel
from stablerecon.operators import Identity
from stablerecon.operators.kinds import OPERATOR_KINDS
from stablerecon.recipes import METHODS
from stablerecon.registry import Registry
from stablerecon.runner import run_audit_config


class ScaledIdentity(StrictModel):
    gain: PositiveFloat = 2.0


class ScaledAdjoint(StrictModel):
    shrink: PositiveFloat = 1.0


@pytest.fixture
def registered() -> Iterator[None]:
    """Register one operator kind, one method kind and one audit test; remove them afterwards."""

    @OPERATOR_KINDS.register("scaled_identity", summary="gain times the identity (test kind)",
                             params=ScaledIdentity, uses=("size",))
    def _operator(spec):  # type: ignore[no-untyped-def]
        return spec.params.gain * Identity(spec.size)

    @METHODS.register("scaled_adjoint", summary="A^* y / (shrink ||A||^2) (test kind)", params=ScaledAdjoint)
    def _method(params, op):  # type: ignore[no-untyped-def]
        norm2 = float(op.norm()) ** 2
        return lambda y, op: op.A_adjoint(y) / (params.shrink * norm2)

    @TESTS.register("norm_ratio", summary="||x_hat|| / ||x|| (test kind)")
    def _test(method, ctx: UnitContext):  # type: ignore[no-untyped-def]
        with torch.no_grad():
            x_hat = method(ctx.op.A(ctx.x), ctx.op)
        return {"ratio": (batch_norm(x_hat) / batch_norm(ctx.x)).tolist()}, {}

    try:
        yield
    finally:
        OPERATOR_KINDS.unregister("scaled_identity")
        METHODS.unregister("scaled_adjoint")
        TESTS.unregister("norm_ratio")


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({
        "name": "mine",
        "operators": [{"kind": "scaled_identity", "size": 16, "gain": 3.0}],
        "methods": [{"name": "exact", "kind": "scaled_adjoint"},
                    {"name": "half", "kind": "scaled_adjoint", "shrink": 2.0},
                    {"name": "zero-filled", "kind": "zero_filled"}],
        "images": ["ellipses:1", "shepp_logan"],
        "tests": ["accuracy", "norm_ratio"],
    }), encoding="utf-8")
    return path


def test_new_kinds_run_from_yaml(registered: None, tmp_path: Path) -> None:
    cfg = load_yaml(_config(tmp_path), AuditConfig)
    assert cfg.operators[0].gain == 3.0 and cfg.methods[1].shrink == 2.0
    (result,) = run_audit_config(cfg, tmp_path / "run", progress=False)
    exact = result.get("exact", "accuracy")["clean"]["psnr"]
    assert min(exact) > 100  # A^* A / ||A||^2 = I exactly, up to float32 rounding
    for name, expected in (("exact", 1.0), ("half", 0.5)):
        assert result.get(name, "norm_ratio")["ratio"] == pytest.approx([expected] * 2, rel=1e-6)
    # zero_filled is A_dagger, which a scaled operator inverts exactly: (c I)^+ (c x) = x
    assert result.get("zero-filled", "norm_ratio")["ratio"] == pytest.approx([1.0, 1.0], rel=1e-6)
    assert "norm_ratio" in (tmp_path / "run" / "results.json").read_text(encoding="utf-8")


def test_new_kinds_are_listed(registered: None) -> None:
    out = CliRunner().invoke(app, ["list"]).output
    for name, field in (("scaled_identity", "gain"), ("scaled_adjoint", "shrink"), ("norm_ratio", "")):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert "(test kind)" in line and field in line


def test_new_kinds_validate_their_fields(registered: None, tmp_path: Path) -> None:
    base = yaml.safe_load(_config(tmp_path).read_text(encoding="utf-8"))
    bad = {**base, "methods": [{"name": "m", "kind": "scaled_adjoint", "shrink": -1}]}
    with pytest.raises(ConfigError, match=r"methods\.0\.shrink"):
        validate(AuditConfig, bad)
    bad = {**base, "operators": [{"kind": "scaled_identity", "size": 16, "gian": 3.0}]}
    with pytest.raises(ConfigError, match=r"operators\.0\.gian: Extra inputs are not permitted"):
        validate(AuditConfig, bad)
    bad = {**base, "methods": [{"name": "m", "kind": "tv", "shrink": 2.0}]}  # another kind's field
    with pytest.raises(ConfigError, match=r"methods\.0\.shrink"):
        validate(AuditConfig, bad)


def test_unregistered_kinds_are_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown operator kind 'scaled_identity'"):
        load_yaml(_config(tmp_path), AuditConfig)


def test_registry_refuses_duplicates_and_bad_entries() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1, summary="one")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2, summary="two")
    reg.register("a", 2, summary="two", replace=True)
    assert reg["a"] == 2 and list(reg) == ["a"]
    with pytest.raises(ValueError, match="summary"):
        reg.register("b", 3, summary=" ")
    with pytest.raises(ValueError, match="identifier"):
        reg.register("b c", 3, summary="x")
    with pytest.raises(KeyError, match="unknown thing 'z'; choose from \\['a'\\]"):
        reg.entry("z")
