"""Training configs: presets load, every invalid value fails early with the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from stablerecon.config import (
    ConfigError,
    ItNetConfig,
    OperatorSpec,
    PostProcessingConfig,
    TrainingConfig,
    load_yaml,
    validate,
)
from stablerecon.operators import Radon, SubsampledFourier, SubsampledWalshHadamard, masks
from stablerecon.training import train

CONFIGS = Path(__file__).parents[1] / "configs"
#: Training presets; ``audit_*.yaml`` are example audit configs (checked below as AuditConfig).
PRESETS = sorted(p for p in CONFIGS.glob("*.yaml") if not p.stem.startswith("audit_"))
AUDIT_PRESETS = sorted(CONFIGS.glob("audit_*.yaml"))


def _error(data: Any) -> str:
    """The message of the ConfigError that validating ``data`` must raise."""
    with pytest.raises(ConfigError) as info:
        validate(TrainingConfig, data)
    return str(info.value)


def _assert_subset(expected: Any, actual: Any, where: str = "") -> None:
    """Every value written in the YAML file is the value the validated config holds."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key}"
            _assert_subset(value, actual[key], f"{where}.{key}")
    else:
        assert actual == expected, where


# ---------------------------------------------------------------- presets


def test_presets_exist() -> None:
    assert CONFIGS / "unet_fourier128.yaml" in PRESETS


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_loads_with_the_values_written_in_it(path: Path) -> None:
    cfg = load_yaml(path, TrainingConfig)
    raw = yaml.safe_load(path.read_text())
    _assert_subset(raw, cfg.model_dump())
    assert cfg.name == path.stem
    # a dump validates back to the same config (what run folders and checkpoints record)
    assert validate(TrainingConfig, yaml.safe_load(yaml.safe_dump(cfg.model_dump()))) == cfg
    if cfg.model.kind != "csc":  # the CSC denoiser has no U-Net (any image size)
        assert cfg.operator.size % 2**cfg.model.unet.depth == 0


@pytest.mark.parametrize("path", AUDIT_PRESETS, ids=[p.stem for p in AUDIT_PRESETS])
def test_audit_preset_loads_with_the_values_written_in_it(path: Path) -> None:
    from stablerecon.config import AuditConfig

    cfg = load_yaml(path, AuditConfig)
    raw = yaml.safe_load(path.read_text())
    _assert_subset(raw["options"], cfg.options.model_dump(), "options")
    assert cfg.tests == raw["tests"] and [m.name for m in cfg.methods] == [m["name"] for m in raw["methods"]]
    assert cfg.name == path.stem


def test_unet_preset_is_postprocessing() -> None:
    cfg = load_yaml(CONFIGS / "unet_fourier128.yaml", TrainingConfig)
    assert isinstance(cfg.model, PostProcessingConfig)
    assert (cfg.operator.kind, cfg.operator.size, cfg.operator.rate) == ("fourier", 128, 0.25)


@pytest.mark.skipif(not (CONFIGS / "itnet_fourier128.yaml").is_file(), reason="no itnet preset")
def test_itnet_preset_is_itnet() -> None:
    cfg = load_yaml(CONFIGS / "itnet_fourier128.yaml", TrainingConfig)
    assert isinstance(cfg.model, ItNetConfig)
    assert cfg.model.iterations >= 1


def test_defaults_are_a_valid_config() -> None:
    # the defaults the module docstring documents, written out here (not read from the code)
    cfg = validate(TrainingConfig, {})
    assert isinstance(cfg.model, PostProcessingConfig)
    dumped = cfg.model_dump()
    expected = {
        ("name",): "model", ("seed",): 0,
        ("operator", "kind"): "fourier", ("operator", "size"): 128, ("operator", "rate"): 0.25,
        ("operator", "mask"): "variable_density", ("model", "kind"): "postprocessing",
        ("model", "unet", "depth"): 4, ("model", "unet", "width"): 16, ("data", "source"): "ellipses",
        ("data", "noise"): 0.01, ("data", "jitter"): 0.0, ("train", "lr"): 1e-3,
        ("train", "schedule"): "cosine", ("train", "batch_size"): 8,
    }
    for path, value in expected.items():
        got = dumped
        for key in path:
            got = got[key]
        assert got == value, (path, got)
    # and they describe a run that can be built: the operator at 25% sampling of a 128 x 128 image
    op = cfg.operator.build()
    assert op.in_shape[-2:] == (128, 128) and abs(op.rate - 0.25) < 0.01


# ---------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(("data", "path"), [
    ({"nmae": "x"}, "nmae"),
    ({"train": {"lrr": 1e-3}}, "train.lrr"),
    ({"operator": {"sise": 32}}, "operator.sise"),
    ({"data": {"noize": 0.1}}, "data.noize"),
    ({"model": {"kind": "postprocessing", "unet": {"depth": 2}, "itterations": 3}},
     "itterations"),
])
def test_unknown_keys_are_rejected_with_their_path(data: dict, path: str) -> None:
    msg = _error(data)
    assert path in msg and "Extra inputs are not permitted" in msg


@pytest.mark.parametrize("kind", ["postprocessing", "itnet"])
def test_unknown_nested_model_key_is_rejected(kind: str) -> None:
    msg = _error({"model": {"kind": kind, "unet": {"widht": 8}}})
    assert "unet.widht" in msg and "model." in msg and "Extra inputs are not permitted" in msg


def test_unknown_nested_model_key_names_the_dotted_path() -> None:
    msg = _error({"model": {"kind": "postprocessing", "unet": {"widht": 8}}})
    assert "model.unet.widht:" in msg


# ---------------------------------------------------------------- value ranges


@pytest.mark.parametrize(("data", "path"), [
    ({"train": {"lr": -1}}, "train.lr"),
    ({"train": {"lr": 0}}, "train.lr"),
    ({"train": {"lr": float("nan")}}, "train.lr"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"train": {"batch_size": 2.0}}, "train.batch_size"),
    ({"train": {"gamma": 1.5}}, "train.gamma"),
    ({"train": {"weight_decay": -1e-4}}, "train.weight_decay"),
    ({"operator": {"rate": -0.1}}, "operator.rate"),
    ({"operator": {"rate": 0.0}}, "operator.rate"),
    ({"operator": {"rate": 1.5}}, "operator.rate"),
    ({"operator": {"size": -32}}, "operator.size"),
    ({"operator": {"size": "32"}}, "operator.size"),
    ({"operator": {"seed": -1}}, "operator.seed"),
    ({"data": {"noise": -0.01}}, "data.noise"),
    ({"data": {"jitter": -1}}, "data.jitter"),
    ({"data": {"jitter": float("inf")}}, "data.jitter"),
    ({"data": {"n_val": 0}}, "data.n_val"),
    ({"seed": True}, "seed"),
    ({"name": "my run"}, "name"),
    ({"model": {"kind": "itnet", "iterations": 0}}, "iterations"),
    ({"model": {"kind": "itnet", "eta": -0.5}}, "eta"),
    ({"model": {"kind": "postprocessing", "unet": {"depth": 0}}}, "unet.depth"),
])
def test_out_of_range_values_are_rejected_naming_the_field(data: dict, path: str) -> None:
    msg = _error(data)
    assert f"{path}:" in msg, msg


def test_rate_one_and_boundaries_are_accepted() -> None:
    cfg = validate(TrainingConfig, {"operator": {"rate": 1.0}, "data": {"noise": 0.0, "jitter": 0.0}})
    assert cfg.operator.rate == 1.0 and cfg.data.noise == 0.0


def test_every_problem_is_listed() -> None:
    msg = _error({"train": {"lr": -1, "epochs": 0}, "data": {"noise": -1}})
    assert all(p in msg for p in ("train.lr:", "train.epochs:", "data.noise:"))
    assert len(msg.strip().splitlines()) == 4  # the header and one line per problem


# ---------------------------------------------------------------- cross-field checks


def test_size_must_be_divisible_by_the_unet_multiple() -> None:
    msg = _error({"operator": {"size": 100}, "model": {"kind": "postprocessing", "unet": {"depth": 4}}})
    assert "model.unet.depth" in msg and "operator.size" in msg and "16" in msg
    # 100 = 4 * 25: depth 2 fits
    cfg = validate(TrainingConfig, {"operator": {"size": 100},
                                    "model": {"kind": "postprocessing", "unet": {"depth": 2}}})
    assert cfg.operator.size % 2**cfg.model.unet.depth == 0


def test_complex_input_needs_a_complex_operator() -> None:
    msg = _error({"operator": {"kind": "radon", "size": 32},
                  "model": {"kind": "postprocessing", "complex_input": True, "unet": {"depth": 2}}})
    assert "model.complex_input" in msg and "operator.kind" in msg and "radon" in msg
    cfg = validate(TrainingConfig, {"operator": {"kind": "radon", "size": 32, "angles": 12},
                                    "model": {"kind": "itnet", "complex_input": False,
                                              "unet": {"depth": 2}}})
    op = cfg.operator.build()
    assert isinstance(op, Radon)


def test_hadamard_needs_a_power_of_two() -> None:
    msg = _error({"operator": {"kind": "hadamard", "size": 96},
                  "model": {"kind": "postprocessing", "complex_input": False}})
    assert "operator" in msg and "power of two" in msg and "96" in msg


# ---------------------------------------------------------------- names


def test_unknown_mask_is_rejected() -> None:
    msg = _error({"operator": {"mask": "variable_densty"}})
    assert "operator.mask:" in msg and "variable_densty" in msg and "variable_density" in msg


def test_unknown_images_are_rejected() -> None:
    msg = _error({"data": {"source": "patches", "images": ["camera", "kamera"]}})
    assert "data.images:" in msg and "kamera" in msg
    assert "'camera'" not in msg.split("choose from")[0]  # only the unknown one is blamed
    assert "data.images:" in _error({"data": {"images": []}})


def test_unknown_source_is_rejected() -> None:
    assert "data.source:" in _error({"data": {"source": "mnist"}})


# ---------------------------------------------------------------- the model union


def test_itnet_accepts_iterations_and_postprocessing_rejects_them() -> None:
    cfg = validate(TrainingConfig, {"model": {"kind": "itnet", "iterations": 5, "shared": True,
                                              "unet": {"depth": 2, "width": 4}}})
    assert isinstance(cfg.model, ItNetConfig)
    assert (cfg.model.iterations, cfg.model.shared, cfg.model.unet.width) == (5, True, 4)
    msg = _error({"model": {"kind": "postprocessing", "iterations": 5}})
    assert "iterations" in msg and "Extra inputs are not permitted" in msg


def test_unknown_model_kind_is_rejected() -> None:
    msg = _error({"model": {"kind": "transformer"}})
    assert "model:" in msg and "transformer" in msg and "itnet" in msg


def test_model_kind_defaults_to_postprocessing() -> None:
    cfg = validate(TrainingConfig, {"model": {"unet": {"depth": 2}}})
    assert isinstance(cfg.model, PostProcessingConfig)


# ---------------------------------------------------------------- files


def test_non_mapping_yaml_is_rejected(tmp_path: Path) -> None:
    for i, text in enumerate(["- a\n- b\n", "3\n", "just a string\n", ""]):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="expected a mapping"):
            load_yaml(path, TrainingConfig)


def test_invalid_yaml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("train: {lr: 1\n  epochs: [\n")
    with pytest.raises(ConfigError, match="broken.yaml.*not valid YAML"):
        load_yaml(path, TrainingConfig)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothere.yaml.*does not exist"):
        load_yaml(tmp_path / "nothere.yaml", TrainingConfig)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: -1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml(.|\n)*train\.lr:"):
        load_yaml(path, TrainingConfig)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00name: x\n")
    with pytest.raises(ConfigError):
        load_yaml(path, TrainingConfig)


def test_assignment_is_validated() -> None:
    cfg = TrainingConfig()
    with pytest.raises(ValueError, match="lr"):
        cfg.train.lr = -1.0
    assert cfg.train.lr == 1e-3


# ---------------------------------------------------------------- operator specs


@pytest.mark.parametrize(("mask", "size", "rate", "seed"), [
    ("variable_density", 32, 0.25, 0), ("variable_density", 48, 0.3, 7),
    ("radial", 32, 0.2, 1), ("uniform_random", 16, 0.5, 3), ("variable_density_lines", 32, 0.4, 2),
])
def test_fourier_spec_builds_the_mask_it_names(mask: str, size: int, rate: float, seed: int) -> None:
    op = OperatorSpec(kind="fourier", size=size, mask=mask, rate=rate, seed=seed).build()
    assert isinstance(op, SubsampledFourier)
    expected = getattr(masks, mask)(size, rate, seed=seed)
    assert op.mask.dtype == torch.bool and torch.equal(op.mask, expected)
    # and it measures what a centred numpy FFT keeps on that mask
    x = np.random.default_rng(seed).random((size, size))
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
    y = op.A(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(y, k[expected.numpy()], atol=1e-12)


def test_default_spec_mask() -> None:
    op = OperatorSpec().build()
    assert torch.equal(op.mask, masks.variable_density(128, 0.25, seed=0))


def test_spec_seed_changes_the_mask() -> None:
    a = OperatorSpec(size=32, seed=0).build().mask
    b = OperatorSpec(size=32, seed=1).build().mask
    assert not torch.equal(a, b) and int(a.sum()) == int(b.sum()) == round(0.25 * 32 * 32)


def test_hadamard_and_radon_specs() -> None:
    op = OperatorSpec(kind="hadamard", size=32, rate=0.3, seed=2).build()
    assert isinstance(op, SubsampledWalshHadamard)
    assert int(op.mask.sum()) == round(0.3 * 32 * 32)
    radon = OperatorSpec(kind="radon", size=32, angles=12).build()
    assert isinstance(radon, Radon) and radon.out_shape[-2:] == (12, 32)


def test_hadamard_spec_measures_the_mean() -> None:
    """The sequency-0 (constant) Walsh function is always sampled by a variable-density mask."""
    op = OperatorSpec(kind="hadamard", size=32, rate=0.25).build()
    assert bool(op.mask[0, 0])
    assert float(op.A(torch.ones(1, 1, 32, 32)).abs().sum()) > 0


# ---------------------------------------------------------------- train validates first


@pytest.mark.parametrize("bad", [
    {"train": {"lrr": 1e-3}},
    {"operator": {"size": 100}, "model": {"kind": "postprocessing", "unet": {"depth": 4}}},
    {"data": {"noise": -1}},
])
def test_train_rejects_a_bad_config_before_doing_anything(tmp_path: Path, bad: dict) -> None:
    run = tmp_path / "run"
    with pytest.raises(ConfigError):
        train(bad, run, progress=False)
    assert not run.exists()
    assert list(tmp_path.iterdir()) == []


def test_train_rejects_a_bad_yaml_file_before_doing_anything(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("operator: {rate: 1.5}\n")
    with pytest.raises(ConfigError, match="operator.rate"):
        train(path, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(TypeError, match="'config'"):
        train(42, tmp_path / "run2", progress=False)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
