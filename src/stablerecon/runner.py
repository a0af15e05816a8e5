"""Run an audit described by a config (``stablerecon audit``, ``stablerecon demo``).

:func:`run_audit_config` builds the operators, methods and images of an
:class:`~stablerecon.config.AuditConfig` and runs :func:`stablerecon.audit.run` for each
operator; :func:`demo_config` is the embedded default audit of ``stablerecon demo``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import yaml

from .audit import AuditResult, ImageSet
from .audit import run as run_audit
from .config import AuditConfig, load_yaml
from .contracts import Operator, Reconstructor
from .files import write_text
from .operators.kinds import OperatorSpec
from .recipes import build_method, build_operator

__all__ = ["run_audit_config", "demo_config", "demo_path", "available_demos", "operator_folder",
           "ConfigBuilder"]


def available_demos() -> list[str]:
    """The modalities of ``stablerecon demo --modality NAME`` (the embedded audit configs
    ``stablerecon/demos/NAME.yaml``); ``fourier`` is the default."""
    folder = resources.files("stablerecon") / "demos"
    return sorted(p.name[:-len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def demo_path(modality: str = "fourier") -> Path:
    """The embedded audit config of ``modality`` (one of :func:`available_demos`)."""
    names = available_demos()
    if modality not in names:
        raise ValueError(f"unknown demo modality {modality!r}; choose from {names}")
    return Path(str(resources.files("stablerecon") / "demos" / f"{modality}.yaml"))


def demo_config(modality: str = "fourier") -> AuditConfig:
    """The embedded demo audit of ``modality`` (``stablerecon/demos/NAME.yaml``). The default,
    ``fourier``: 25% variable-density Fourier at 128 x 128; the shipped U-Nets (without and
    with jitter) and ItNet against FIRENET, TV, l1-wavelet FISTA and zero-filling; a held-out
    ellipse phantom, Shepp-Logan, camera and brick."""
    return load_yaml(demo_path(modality), AuditConfig)


def operator_folder(spec: OperatorSpec, index: int) -> str:
    """Subfolder name of the ``index``-th operator of a multi-operator audit."""
    return f"{index:02d}-{spec.label()}"


class ConfigBuilder:
    """Rebuilds the operator, methods, sweep builder and images of operator ``index`` of an audit
    config: what a Ray worker calls (it is picklable: it holds the config's fields and folder,
    and validates them again where it runs, so the worker needs stablerecon and the files the
    config names at the same paths)."""

    def __init__(self, config: AuditConfig, index: int) -> None:
        self.fields = config.model_dump()
        self.base_dir = str(config.base_dir if config.base_dir is not None else Path.cwd())
        self.index = index

    def config(self) -> AuditConfig:
        """The config, validated again (relative image paths from the same folder)."""
        from .config_base import validate

        return validate(AuditConfig, self.fields, source="audit config", base_dir=self.base_dir)

    def __call__(self) -> tuple[dict[str, Reconstructor], Operator, Callable[[float], Operator] | None,
                                ImageSet]:
        config = self.config()
        return _build(config, self.index)


def _build(config: AuditConfig, index: int) -> tuple[dict[str, Reconstructor], Operator,
                                                     Callable[[float], Operator] | None, ImageSet]:
    spec = config.operators[index]
    op = build_operator(spec)
    methods = {m.name: build_method(m, op) for m in config.methods}
    make_operator = None
    if spec.sweepable:
        def make_operator(rate: float, spec: OperatorSpec = spec) -> Operator:
            return build_operator(spec.at_rate(rate))
    return methods, op, make_operator, config.image_set(spec.size)


def run_audit_config(config: AuditConfig, out: str | Path, progress: bool = True, *,
                     device: str | None = None, executor: str = "serial",
                     address: str | None = None) -> list[AuditResult]:
    """Audit every operator x method x image x test of ``config`` into ``out`` (one subfolder
    per operator when there are several, with an ``index.html`` linking their reports).
    Resumable: run again with the same config and folder to finish an interrupted audit.
    ``device``, ``executor`` and ``address`` are those of :func:`stablerecon.audit.run`; with
    ``executor="ray"`` each worker rebuilds the methods and operator from the config
    (:class:`ConfigBuilder`)."""
    out = Path(out)
    results = []
    many = len(config.operators) > 1
    text = yaml.safe_dump(config.model_dump(), sort_keys=False)
    # build every operator, method and image set first: user code that fails, fails before any work
    plans = []
    for i, spec in enumerate(config.operators):
        methods, op, make_operator, images = _build(config, i)
        folder = out / operator_folder(spec, i) if many else out
        plans.append((op, methods, images, make_operator, folder, ConfigBuilder(config, i)))
    for op, methods, images, make_operator, folder, builder in plans:
        results.append(run_audit(methods, op, images, tests=config.tests, options=config.options,
                                 make_operator=make_operator, out=folder, progress=progress,
                                 config_text=text, device=device, executor=executor, address=address,
                                 builder=builder))
    if many:
        links = "\n".join(f'<li><a href="{operator_folder(s, i)}/report.html">{operator_folder(s, i)}</a>: '
                          f"{r.operator}</li>" for i, (s, r) in enumerate(zip(config.operators, results,
                                                                               strict=True)))
        write_text(out / "index.html", f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                                       f"<title>{config.name}</title></head><body><h1>{config.name}</h1>"
                                       f"<ul>\n{links}\n</ul></body></html>\n")
    return results
