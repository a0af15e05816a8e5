"""Run an audit described by a config (``stablerecon audit``, ``stablerecon demo``).

:func:`run_audit_config` builds the operators, methods and images of an
:class:`~stablerecon.config.AuditConfig` and runs :func:`stablerecon.audit.run` for each
operator; :func:`demo_config` is the embedded default audit of ``stablerecon demo``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from .audit import AuditResult
from .audit import run as run_audit
from .config import AuditConfig, load_yaml
from .contracts import Operator
from .files import write_text
from .operators.kinds import OperatorSpec
from .recipes import build_method, build_operator

__all__ = ["run_audit_config", "demo_config", "operator_folder"]


def demo_config() -> AuditConfig:
    """The embedded demo audit (``stablerecon/demo.yaml``): 25% variable-density Fourier at
    128 x 128; the shipped U-Nets (without and with jitter) and ItNet against FIRENET, TV,
    l1-wavelet FISTA and zero-filling; a held-out ellipse phantom, Shepp-Logan, camera and
    brick."""
    path = Path(str(resources.files("stablerecon") / "demo.yaml"))
    return load_yaml(path, AuditConfig)


def operator_folder(spec: OperatorSpec, index: int) -> str:
    """Subfolder name of the ``index``-th operator of a multi-operator audit."""
    return f"{index:02d}-{spec.label()}"


def run_audit_config(config: AuditConfig, out: str | Path, progress: bool = True) -> list[AuditResult]:
    """Audit every operator x method x image x test of ``config`` into ``out`` (one subfolder
    per operator when there are several, with an ``index.html`` linking their reports).
    Resumable: run again with the same config and folder to finish an interrupted audit."""
    out = Path(out)
    results = []
    many = len(config.operators) > 1
    text = yaml.safe_dump(config.model_dump(), sort_keys=False)
    # build every operator, method and image set first: user code that fails, fails before any work
    plans = []
    for i, spec in enumerate(config.operators):
        op = build_operator(spec)
        methods = {m.name: build_method(m, op) for m in config.methods}
        images = config.load_images(spec.size)
        make_operator = None
        if spec.sweepable:
            def make_operator(rate: float, spec: OperatorSpec = spec) -> Operator:
                return build_operator(spec.model_copy(update={"rate": rate}))
        folder = out / operator_folder(spec, i) if many else out
        plans.append((op, methods, images, make_operator, folder))
    for op, methods, images, make_operator, folder in plans:
        results.append(run_audit(methods, op, images, tests=config.tests, options=config.options,
                                 make_operator=make_operator, out=folder, progress=progress,
                                 config_text=text))
    if many:
        links = "\n".join(f'<li><a href="{operator_folder(s, i)}/report.html">{operator_folder(s, i)}</a>: '
                          f"{r.operator}</li>" for i, (s, r) in enumerate(zip(config.operators, results,
                                                                               strict=True)))
        write_text(out / "index.html", f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                                       f"<title>{config.name}</title></head><body><h1>{config.name}</h1>"
                                       f"<ul>\n{links}\n</ul></body></html>\n")
    return results
