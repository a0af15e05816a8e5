"""Closed-form references shared by the CT operator tests: an anti-aliased ellipse image and
the exact chord lengths of lines through the ellipse (its line integrals); and the two engines
(cached sparse matrix, matrix-free) the projector tests run on."""

from __future__ import annotations

import math

import numpy as np
import torch


def ellipse_image(size: int, centre: tuple[float, float], axes: tuple[float, float],
                   tilt: float) -> np.ndarray:
    """Anti-aliased indicator (16 x 16 supersampling) of a tilted ellipse, centre in (u, v)."""
    rows, cols = np.mgrid[:size, :size]
    sub = (np.arange(16) + 0.5) / 16 - 0.5
    dv, du = np.meshgrid(sub, sub, indexing="ij")
    u = cols[..., None, None] + du - size // 2 - centre[0]
    v = rows[..., None, None] + dv - size // 2 - centre[1]
    c, s = math.cos(tilt), math.sin(tilt)
    inside = ((c * u + s * v) / axes[0]) ** 2 + ((-s * u + c * v) / axes[1]) ** 2 <= 1.0
    return inside.mean(axis=(-1, -2))


def ellipse_chords(points: np.ndarray, directions: np.ndarray, centre: tuple[float, float],
                    axes: tuple[float, float], tilt: float) -> np.ndarray:
    """Length of the chords of the ellipse on the lines ``point + s direction`` (unit directions)."""
    c, s = math.cos(tilt), math.sin(tilt)
    rot = np.array([[c, s], [-s, c]]) / np.asarray(axes)[:, None]
    p = (points - np.asarray(centre)) @ rot.T
    d = directions @ rot.T
    qa, qb, qc = (d * d).sum(-1), 2 * (p * d).sum(-1), (p * p).sum(-1) - 1.0
    disc = qb * qb - 4 * qa * qc
    return np.sqrt(np.clip(disc, 0, None)) / qa


ENGINES = ["matrix", "matrix-free"]


def with_engine(op, engine: str):  # noqa: ANN001, ANN201
    """The CT operator ``op`` on its cached sparse matrix (``"matrix"``) or recomputing the
    weights per call (``"matrix-free"``), checked to be on that path."""
    if engine == "matrix-free":
        op.matrix_bytes = 0
    assert (op._matrices(torch.float64, torch.device("cpu")) is not None) == (engine == "matrix")
    return op
