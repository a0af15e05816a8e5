"""Reading audits back: the entries of a run folder to resume from, and :func:`load`.

The folder layout is written by :meth:`~stablerecon.audit.result.AuditResult.save` and by
:func:`stablerecon.audit.run` as units finish: ``results.json``, ``truth/*.safetensors`` (the
images, a chunk per file), ``arrays/*.safetensors`` (a unit per file) and ``config.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..config_base import validate
from .options import AuditOptions
from .result import RESULTS_SCHEMA, AuditResult
from .units import UnitKey

__all__ = ["load", "read_existing", "options_yaml"]


def read_existing(folder: Path, fingerprint: dict[str, str]) -> tuple[dict, dict]:
    """The finished units (``{UnitKey: values}``) and timings of the audit saved in ``folder``
    (empty when there is none; failed units are not kept, so a rerun retries them); a
    ``ValueError`` naming argument 'out' when the folder holds something else or an audit with
    another fingerprint."""
    path = folder / "results.json"
    if not path.is_file():
        return {}, {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"argument 'out': {path} is not a readable audit results file ({err}); "
            f"move it away or choose another folder"
        ) from None
    if (
        not isinstance(doc, dict)
        or doc.get("kind") != "stablerecon-audit"
        or doc.get("schema") != RESULTS_SCHEMA
    ):
        raise ValueError(f"argument 'out': {path} is not a stablerecon audit (schema {RESULTS_SCHEMA})")
    old = doc.get("fingerprint", {})
    for key in ("images", "operator", "options"):
        if old.get(key) != fingerprint[key]:
            raise ValueError(
                f"argument 'out': {folder} holds an audit with different {key}; choose another folder"
            )
    units = {}
    for e in doc.get("entries", []):
        start, stop = e["images"]
        units[UnitKey(e["method"], e["test"], int(start), int(stop))] = e["values"]
    return units, dict(doc.get("timings", {}))


def options_yaml(options: AuditOptions, methods: list[str], images: list[str], tests: list[str]) -> str:
    """The ``config.yaml`` text of an audit run from Python (methods, images, tests, options)."""
    return yaml.safe_dump(
        {"methods": methods, "images": images, "tests": tests, "options": options.model_dump()},
        sort_keys=False,
    )


def load(path: str | Path) -> AuditResult:
    """Read a saved audit (``results.json``; images and arrays are read on demand from
    ``truth/`` and ``arrays/``) back into an :class:`AuditResult`, e.g. to redraw its report."""
    folder = Path(path)
    file = folder / "results.json"
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"argument 'path': {folder} does not hold a readable audit ({err})") from None
    if (not isinstance(doc, dict) or doc.get("kind") != "stablerecon-audit"
            or doc.get("schema") != RESULTS_SCHEMA):
        raise ValueError(f"argument 'path': {file} is not a stablerecon audit (schema {RESULTS_SCHEMA})")
    options = validate(AuditOptions, doc["options"], source=str(file))
    result = AuditResult(doc["methods"], doc["images"], doc["tests"], options, doc["operator"],
                         digest=doc.get("fingerprint", {}).get("images", ""),
                         timings=doc.get("timings", {}), path=folder)
    for e in doc["entries"]:
        start, stop = e["images"]
        result.units[UnitKey(e["method"], e["test"], int(start), int(stop))] = e["values"]
    for f in doc.get("failures", []):
        start, stop = f["images"]
        result.failures[UnitKey(f["method"], f["test"], int(start), int(stop))] = {
            "kind": f.get("kind", ""), "message": f.get("message", "")}
    result.truth_at([0])  # raises naming the folder when truth/ is missing
    return result
