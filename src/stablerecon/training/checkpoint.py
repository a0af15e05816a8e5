"""Checkpoints: weights in safetensors, everything needed to rebuild the method in JSON.

A checkpoint ``NAME`` is three files in one folder:

- ``NAME.safetensors``: the network's weights (and batch-norm statistics), nothing else;
- ``NAME.json``: the format version, the model architecture, the operator spec, the complete
  training config, the epoch and step, validation metrics, the SHA-256 of the weights file
  and the name of the optimiser-state file;
- ``NAME.optim.safetensors`` (training checkpoints only): Adam's state and the torch RNG state,
  for resuming.

:func:`load` rebuilds the method from the first two alone. The JSON is written last and
atomically, so it marks a complete checkpoint: a run killed while saving leaves at worst
unreferenced files, never a JSON pointing at half-written weights. Weights are never
unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .._version import __version__
from ..config_base import ConfigError, validate
from ..csc import CSCDenoiser
from ..files import write_atomic, write_json
from ..nets import ItNet, PostProcessing, UNet
from .config import TrainingConfig

__all__ = [
    "CheckpointError",
    "Checkpoint",
    "build_model",
    "save_checkpoint",
    "write_checkpoint",
    "read_checkpoint",
    "read_checkpoint_meta",
    "network_state",
    "load",
    "write_atomic",
    "export",
    "FORMAT",
    "VERSION",
]

ConfigT = TypeVar("ConfigT")

FORMAT = "stablerecon-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (missing, corrupt or not matching its description)."""


def build_model(config: TrainingConfig, op: nn.Module | None = None) -> nn.Module:
    """The untrained network a training config describes, with ``op`` as its default operator.

    Image channels are 1 (grayscale); with ``complex_input`` the network sees the real and
    imaginary parts of the complex iterate as 2 channels. Kind ``csc`` is
    ``PostProcessing(CSCDenoiser(...), op, residual=False)`` on the real part of ``A_dagger(y)``,
    its ``lam`` and ``steps`` taken from the config (they are not weights).
    """
    m = config.model
    if m.kind == "csc":
        denoiser = CSCDenoiser(1, atoms=m.atoms, kernel_size=m.kernel_size, lam=m.lam, steps=m.steps,
                               seed=config.seed)
        method = PostProcessing(denoiser, op, residual=False)
        method.name = "CSC post-processing"
        return method
    channels = 2 if m.complex_input else 1
    if m.kind == "postprocessing":
        net = UNet(channels, 1, depth=m.unet.depth, width=m.unet.width, batch_norm=m.unet.batch_norm)
        return PostProcessing(net, op)
    net = UNet(channels, channels, depth=m.unet.depth, width=m.unet.width, batch_norm=m.unet.batch_norm)
    return ItNet(net, iterations=m.iterations, shared=m.shared, eta=m.eta, learn_eta=m.learn_eta, op=op,
                 consistency=m.consistency)


def network_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's learned state (parameters and buffers), without its operator's buffers."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.startswith("op.")}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{idx}.{key}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    return tensors, sd["param_groups"]


def write_checkpoint(folder: Path, name: str, model: nn.Module, fmt: str, version: int,
                     described: dict[str, Any], info: dict[str, Any],
                     optimizer: torch.optim.Optimizer | None = None,
                     extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoint ``name`` of any kind into ``folder`` and return its JSON's path.

    First ``name.safetensors`` (:func:`network_state`, metadata ``format = fmt``), then, with
    ``optimizer``, ``name.optim.safetensors`` (Adam's state, the torch RNG state and
    ``extra_tensors``), last ``name.json``: ``format``, ``version``, ``stablerecon_version``,
    ``weights`` and ``weights_sha256``, the fields of ``described`` (what rebuilds the model:
    architecture, config, ...), ``optimizer`` (the state file's name or ``None``), the fields of
    ``info`` (epoch, step, metrics, ...) and, with ``optimizer``, ``optimizer_sha256`` and
    ``optimizer_param_groups``. Every file is written atomically."""
    folder = Path(folder)
    weights = folder / f"{name}.safetensors"
    state = {k: v.cpu() for k, v in network_state(model).items()}
    write_atomic(weights, lambda p: save_file(state, str(p), metadata={"format": fmt}))
    meta: dict[str, Any] = {
        "format": fmt,
        "version": version,
        "stablerecon_version": __version__,
        "weights": weights.name,
        "weights_sha256": _sha256(weights),
        **described,
        "optimizer": None,
        **info,
    }
    if optimizer is not None:
        tensors, groups = _optimizer_tensors(optimizer)
        tensors.update(extra_tensors or {})
        opt_path = folder / f"{name}.optim.safetensors"
        write_atomic(opt_path, lambda p: save_file(tensors, str(p)))
        meta.update(optimizer=opt_path.name, optimizer_sha256=_sha256(opt_path),
                    optimizer_param_groups=groups)
    path = folder / f"{name}.json"
    write_json(path, meta)
    return path


def save_checkpoint(folder: Path, name: str, model: nn.Module, config: TrainingConfig,
                    info: dict[str, Any], optimizer: torch.optim.Optimizer | None = None) -> Path:
    """Write checkpoint ``name`` (weights, optional optimiser state, then the JSON) into
    ``folder``; return the JSON's path. ``info`` (epoch, step, metrics, ...) goes into the JSON."""
    described = {"architecture": config.model.model_dump(), "operator": config.operator.model_dump(),
                 "training": config.model_dump()}
    return write_checkpoint(folder, name, model, FORMAT, VERSION, described, info, optimizer)


@dataclass
class Checkpoint:
    """A checkpoint read back: its JSON ``meta``, validated ``config`` and file paths."""

    path: Path
    meta: dict[str, Any]
    config: TrainingConfig

    @property
    def weights_path(self) -> Path:
        return self.path.parent / self.meta["weights"]

    @property
    def optimizer_path(self) -> Path | None:
        name = self.meta.get("optimizer")
        return None if name is None else self.path.parent / name

    def weights(self) -> dict[str, torch.Tensor]:
        """The weights, after checking the file against the SHA-256 in the JSON."""
        return _read_tensors(self.weights_path, self.meta.get("weights_sha256"), "weights")

    def build(self, op: nn.Module | None = None) -> nn.Module:
        """The method with these weights (in eval mode), its operator built from the spec
        unless ``op`` is given."""
        op = op if op is not None else self.config.operator.build()
        return self.load_into(build_model(self.config, op)).eval()

    def load_into(self, model: nn.Module) -> nn.Module:
        """Load these weights into ``model`` (built from this config), after checking that
        every tensor name, shape and dtype matches; returns ``model``."""
        state = self.weights()
        expected = network_state(model)
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {str(self.weights_path)!r} does not match its architecture "
                f"{self.meta['architecture']}: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        for key, value in state.items():
            if value.shape != expected[key].shape or value.dtype != expected[key].dtype:
                raise CheckpointError(
                    f"checkpoint {str(self.weights_path)!r}: tensor {key!r} has shape {tuple(value.shape)} "
                    f"and dtype {value.dtype}, the architecture needs {tuple(expected[key].shape)} "
                    f"and {expected[key].dtype}"
                )
        model.load_state_dict(state, strict=False)
        return model

    def optimizer_state(self) -> dict[str, torch.Tensor]:
        """The tensors of the optimiser-state file (Adam's state ``state.*``, the RNG state
        ``rng.torch`` and any extra tensors saved with them), after checking the file against
        the SHA-256 in the JSON."""
        path = self.optimizer_path
        if path is None:
            raise CheckpointError(f"checkpoint {str(self.path)!r} has no optimiser state (not resumable)")
        return _read_tensors(path, self.meta.get("optimizer_sha256"), "optimiser state")

    def restore_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Load Adam's state and the torch RNG state saved with this checkpoint."""
        path = self.optimizer_path
        tensors = self.optimizer_state()
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("state."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        try:
            optimizer.load_state_dict({"state": state, "param_groups": self.meta["optimizer_param_groups"]})
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"optimiser state {str(path)!r} does not fit the model: {err}") from None
        if "rng.torch" not in tensors:
            raise CheckpointError(f"optimiser state {str(path)!r} lacks the RNG state 'rng.torch'")
        torch.set_rng_state(tensors["rng.torch"])


def _read_tensors(path: Path, sha256: str | None, what: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{what} file {str(path)!r} is missing")
    if sha256 is not None and _sha256(path) != sha256:
        raise CheckpointError(f"{what} file {str(path)!r} is corrupt or was modified: "
                              f"its SHA-256 does not match the checkpoint JSON")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{what} file {str(path)!r} is not a valid safetensors file: {err}") from None


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "model.json", path / f"{path.name}.json"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"folder {str(path)!r} holds no model.json (is it a finished training run?)")
    if path.suffix == ".safetensors":
        stem = path.name.removesuffix(".safetensors")
        path = path.with_name(f"{stem}.json")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path


def _read_meta(path: Path, fmt: str, version: int, kind: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """The JSON of checkpoint ``path``, checked for format ``fmt``, ``version`` and ``fields``."""
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise CheckpointError(f"{str(path)!r} is not a {kind} (no format {fmt!r})")
    if meta.get("version") != version:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version {meta.get('version')!r}; "
                              f"this stablerecon reads version {version}")
    for key in fields:
        if key not in meta:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks the field {key!r}")
    return meta


def read_checkpoint_meta(path: str | Path, fmt: str, version: int, kind: str, fields: tuple[str, ...],
                         config_type: type[ConfigT], config_field: str,
                         config_what: str) -> tuple[Path, dict[str, Any], ConfigT]:
    """The JSON of a checkpoint of any kind, checked, and the config it records.

    ``path`` is the JSON, its ``.safetensors`` weights file, or a run folder holding
    ``model.json``. The JSON must have format ``fmt`` (else: "not a ``kind``"), ``version`` and
    every field of ``fields``; ``meta[config_field]`` is validated as ``config_type`` (errors
    name ``config_what``, e.g. "training config"). Returns the JSON's path, the JSON and the
    config; raises :class:`CheckpointError` for anything missing or invalid."""
    path = _resolve(path)
    meta = _read_meta(path, fmt, version, kind, fields)
    try:
        config = validate(config_type, meta[config_field], source=f"{config_what} in {str(path)!r}")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    return path, meta, config


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint's JSON (``path``: the JSON, its weights file, or a run
    folder holding ``model.json``)."""
    path, meta, config = read_checkpoint_meta(path, FORMAT, VERSION, "stablerecon checkpoint",
                                              ("weights", "architecture", "operator", "training"),
                                              TrainingConfig, "training", "training config")
    # Compared as validated models, so that fields added later with defaults (e.g. the ItNet's
    # ``consistency``) read the same in checkpoints written before them.
    try:
        architecture = type(config.model).model_validate(meta["architecture"]).model_dump()
        operator = type(config.operator).model_validate(meta["operator"]).model_dump()
    except (ValueError, TypeError):
        architecture = operator = None
    if config.model.model_dump() != architecture or config.operator.model_dump() != operator:
        raise CheckpointError(f"checkpoint {str(path)!r}: 'architecture'/'operator' disagree with "
                              f"the training config it records")
    return Checkpoint(path, meta, config)


def load(path: str | Path, op: nn.Module | None = None) -> nn.Module:
    """Rebuild a trained method from a checkpoint (its JSON and weights file alone).

    Parameters
    ----------
    path:
        A checkpoint JSON, its ``.safetensors`` weights file, or a finished run folder (its
        ``model.json``, the best weights).
    op:
        Operator to attach instead of the one built from the recorded spec.

    Returns
    -------
    nn.Module
        The method in eval mode, callable as ``method(y, op) -> x_hat`` (``op`` optional).

    Raises
    ------
    CheckpointError
        Missing files, invalid JSON, a weights file that is corrupt, modified, or does not
        match the recorded architecture.
    """
    return read_checkpoint(path).build(op)


def export(path: str | Path, folder: str | Path, name: str, config_file: bool = True) -> Path:
    """Copy a checkpoint (e.g. a finished run's ``model.json``) into ``folder`` as
    ``name.json`` + ``name.safetensors`` (+ ``name.yaml``, its training config, if
    ``config_file``), without optimiser state: how a run's ``model.*`` and the shipped weights
    in ``stablerecon/weights`` are made. Returns the new JSON's path."""
    import shutil

    import yaml

    ck = read_checkpoint(path)
    ck.weights()  # verifies the checksum before anything is written
    folder = Path(folder)
    weights = folder / f"{name}.safetensors"
    write_atomic(weights, lambda p: shutil.copyfile(ck.weights_path, p))
    if config_file:
        cfg_text = yaml.safe_dump(ck.config.model_dump(), sort_keys=False)
        write_atomic(folder / f"{name}.yaml", lambda p: p.write_text(cfg_text))
    meta = {**ck.meta, "weights": weights.name, "optimizer": None}
    for key in ("optimizer_sha256", "optimizer_param_groups"):
        meta.pop(key, None)
    out = folder / f"{name}.json"
    write_atomic(out, lambda p: p.write_text(json.dumps(meta, indent=1)))
    return out
