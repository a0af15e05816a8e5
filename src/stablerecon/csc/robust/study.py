"""The robustness study: lam sweeps on corrupted sets, the label-free choice, and its figure.

:func:`robustness_study` runs SDNet (and a baseline) over a corruption x severity grid, fits the
residual statistic to the best ``lam`` on a validation split and measures the label-free
choice on a test split; :class:`RobustnessStudy` holds the results, their summaries
(:meth:`~RobustnessStudy.oracle_gain`, :meth:`~RobustnessStudy.recovered`) and the figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ...validation import choice
from ..sdnet import SDNet
from ._common import check_data, check_lams, correct_of, eval_mode, nearest, typical
from .fit import ResidualLamFit, adaptive_predict
from .sweep import STATISTICS, lam_of, lam_sweep, residuals

__all__ = ["FIT_KINDS", "RobustnessStudy", "robustness_study"]

#: Kinds of fit of :func:`robustness_study`: one pooled over every corruption, or one per type.
FIT_KINDS: tuple[str, ...] = ("pooled", "corruption")


@dataclass
class RobustnessStudy:
    """The results of :func:`robustness_study`.

    ``rows`` hold, per corruption and severity (severity 0: clean), the test accuracy of the
    baseline, of SDNet at the training ``lam``, at every ``lam`` of the grid (``by_lam``), at
    the best ``lam`` (oracle), the label-free choice of the study's ``statistic`` and
    ``fit_by`` (``adaptive``, run with :func:`adaptive_predict`), and, in ``adaptive_by``, the
    label-free accuracy for every statistic of :data:`STATISTICS` and both kinds of fit (keys
    ``"noise/pooled"``, ``"energy/corruption"``, ...; read off the test sweep), with the typical
    (geometric-mean) statistic of the test set in ``residual`` and of the validation set, for
    every statistic, in ``residual_val``. ``fits[statistic]`` holds the
    validation-set fits: ``"pooled"`` over all sets, and one per corruption type (over its
    severities and the clean set)."""

    train_lam: float
    probe_lam: float
    lams: list[float]
    statistic: str = "noise"
    fit_by: str = "pooled"
    rows: list[dict] = field(default_factory=list)
    fits: dict[str, dict[str, ResidualLamFit]] = field(default_factory=dict)

    def fit_for(self, corruption: str, statistic: str | None = None,
                fit_by: str | None = None) -> ResidualLamFit:
        """The fit that chooses ``lam`` on a set of ``corruption`` (the pooled one for the clean set)."""
        fits = self.fits[statistic or self.statistic]
        return fits["pooled"] if (fit_by or self.fit_by) == "pooled" else fits.get(corruption, fits["pooled"])

    def oracle_gain(self) -> float:
        """Sum over the corrupted sets of (best-``lam`` accuracy - training-``lam`` accuracy)."""
        return sum(r["best_accuracy"] - r["sdnet"] for r in self.rows if r["severity"] > 0)

    def adaptive_gain(self, statistic: str | None = None, fit_by: str | None = None) -> float:
        """Sum over the corrupted sets of (label-free accuracy - training-``lam`` accuracy), for
        the study's own choice (default) or another statistic / kind of fit."""
        if statistic is None and fit_by is None:
            return sum(r["adaptive"] - r["sdnet"] for r in self.rows if r["severity"] > 0)
        key = f"{statistic or self.statistic}/{fit_by or self.fit_by}"
        return sum(r["adaptive_by"][key] - r["sdnet"] for r in self.rows if r["severity"] > 0)

    def recovered(self, statistic: str | None = None, fit_by: str | None = None) -> float:
        """Share of the oracle gain that the label-free choice recovers."""
        oracle = self.oracle_gain()
        return self.adaptive_gain(statistic, fit_by) / oracle if oracle > 0 else float("nan")

    def figure(self, statistic: str | None = None) -> Any:
        """A matplotlib figure (built without pyplot): test accuracy against ``lam`` for every
        corruption, one line per severity (the best ``lam`` marked), and the validation sets'
        typical residual ``statistic`` against their best ``lam`` with the pooled fit."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        statistic = choice(statistic or self.statistic, "statistic", STATISTICS)
        kinds = list(dict.fromkeys(r["corruption"] for r in self.rows if r["severity"] > 0))
        fig = Figure(figsize=(3.0 * (len(kinds) + 1), 3.0), layout="constrained")
        axes = fig.subplots(1, len(kinds) + 1, sharey=False)
        clean = next((r for r in self.rows if r["severity"] == 0), None)
        top = max((r["severity"] for r in self.rows), default=1)
        colours = colormaps["viridis"]
        for ax, kind in zip(axes, kinds, strict=False):
            if clean is not None:
                ax.plot(self.lams, clean["by_lam"], color="0.5", ls="--", lw=1, label="clean")
            for r in (r for r in self.rows if r["corruption"] == kind):
                c = colours(0.9 * (r["severity"] - 1) / max(top - 1, 1))
                ax.plot(self.lams, r["by_lam"], color=c, lw=1.2, label=f"severity {r['severity']}")
                ax.plot([r["best_lam"]], [r["best_accuracy"]], "o", color=c, ms=4)
            ax.axvline(self.train_lam, color="tab:red", ls=":", lw=1)
            ax.set(title=kind, xlabel="lam", ylabel="test accuracy", ylim=(0, 1.02))
        axes[0].legend(fontsize=6)
        ax = axes[-1]
        markers = dict(zip(["clean", *kinds], "os^vDP*X", strict=False))
        for r in self.rows:
            ax.plot([r["residual_val"][statistic]], [r["best_lam_val"]], markers.get(r["corruption"], "o"),
                    color=colours(0.9 * (r["severity"] - 1) / max(top - 1, 1)) if r["severity"] else "0.5",
                    ms=5, label=r["corruption"] if r["severity"] in (0, 1) else None)
        fit = self.fits[statistic]["pooled"]
        values = torch.tensor([r["residual_val"][statistic] for r in self.rows], dtype=torch.float64)
        line = torch.logspace(math.log10(float(values.min())), math.log10(float(values.max())), 50,
                              dtype=torch.float64)
        ax.plot(line.numpy(), fit(line).numpy(), color="k", lw=1, label=f"pooled fit, R$^2$ {fit.r2:.2f}")
        ax.set(xscale="log", xlabel=f"residual {statistic} (validation, typical)", ylabel="best lam",
               title=f"label-free: {self.recovered(statistic, 'pooled'):.0%} of oracle gain")
        ax.legend(fontsize=6)
        return fig

    def to_dict(self) -> dict:
        """The study as plain JSON-ready data: its settings, ``rows``, the fits' coefficients
        (``a``, ``b``, ``r2``, ``lo``, ``hi``) and the summaries (``oracle_gain``,
        ``adaptive_gain``, ``recovered``, and ``recovered_by`` for every statistic and kind of fit)."""

        def record(f: ResidualLamFit) -> dict:
            return {"a": f.a, "b": f.b, "r2": f.r2, "lo": f.lo, "hi": f.hi}

        return {"train_lam": self.train_lam, "probe_lam": self.probe_lam, "lams": self.lams,
                "statistic": self.statistic, "fit_by": self.fit_by, "rows": self.rows,
                "fits": {s: {k: record(f) for k, f in fits.items()} for s, fits in self.fits.items()},
                "oracle_gain": self.oracle_gain(), "adaptive_gain": self.adaptive_gain(),
                "recovered": self.recovered(),
                "recovered_by": {f"{s}/{b}": self.recovered(s, b) for s in self.fits
                                 for b in FIT_KINDS}}


def robustness_study(model: SDNet, baseline: nn.Module | None, x_val: Tensor, y_val: Tensor, x_test: Tensor,
                     y_test: Tensor, lams: Sequence[float],
                     corruptions: Sequence[str] = ("gaussian", "shot", "speckle", "impulse"),
                     severities: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0,
                     probe_lam: float | None = None, statistic: str = "noise", fit_by: str = "pooled",
                     batch: int = 512, progress: bool = True) -> RobustnessStudy:
    """Sweep ``lam`` over ``lams`` on every corrupted validation and test set, fit the residual
    ``statistic`` at ``probe_lam`` (default: the training ``lam``) to the best validation
    ``lam`` (:class:`ResidualLamFit`; ``fit_by="pooled"``: one fit over all sets, so the choice
    needs neither labels nor the corruption type; ``"corruption"``: one fit per type, the
    paper's procedure), and measure the label-free choice on the test sets. Corruptions are
    :func:`stablerecon.data.corrupt` with seeds derived from ``seed`` (validation and test
    drawn independently). Every statistic of :data:`STATISTICS` is fitted and scored too
    (``RobustnessStudy.recovered(statistic, fit_by)``)."""
    from tqdm.auto import tqdm

    from ...data.corruptions import corrupt

    check_data(x_val, y_val)
    check_data(x_test, y_test)
    lams = check_lams(lams)
    statistic = choice(statistic, "statistic", STATISTICS)
    fit_by = choice(fit_by, "fit_by", FIT_KINDS)
    train_lam = model.first_csc.lam
    probe = train_lam if probe_lam is None else check_lams([probe_lam], "probe_lam")[0]
    with eval_mode(model, baseline):  # restored afterwards
        settings = [("clean", 0)] + [(c, s) for c in corruptions for s in severities]
        study = RobustnessStudy(train_lam, probe, lams, statistic, fit_by)
        grid = torch.tensor(lams, dtype=torch.float64)
        pairs: dict[str, list[tuple[float, float]]] = {s: [] for s in STATISTICS}
        sets = []
        for k, (kind, sev) in enumerate(tqdm(settings, desc="lam sweep", disable=not progress)):
            xv = x_val if sev == 0 else corrupt(x_val, kind, sev, seed=seed + 2 * k)
            xt = x_test if sev == 0 else corrupt(x_test, kind, sev, seed=seed + 2 * k + 1)
            acc_val = lam_sweep(model, xv, y_val, lams, batch).float().mean(1)
            correct = lam_sweep(model, xt, y_test, lams, batch)
            acc_test = correct.float().mean(1)
            stats_test = {}
            best_val = lams[int(acc_val.argmax())]
            for s in STATISTICS:
                pairs[s].append((typical(residuals(model, xv, probe, batch, s)), best_val))
                stats_test[s] = residuals(model, xt, probe, batch, s)
            with lam_of(model, train_lam):
                own = float(correct_of(model, xt, y_test, batch).float().mean())
            row = {"corruption": kind, "severity": sev, "sdnet": own,
                   "by_lam": [float(a) for a in acc_test], "best_lam": lams[int(acc_test.argmax())],
                   "best_accuracy": float(acc_test.max()), "best_lam_val": best_val,
                   "residual": typical(stats_test[statistic]),
                   "residual_val": {s: pairs[s][-1][0] for s in STATISTICS}}
            if baseline is not None:
                row["baseline"] = float(correct_of(baseline, xt, y_test, batch).float().mean())
            study.rows.append(row)
            sets.append((xt, correct, stats_test))
        for s in STATISTICS:
            study.fits[s] = {"pooled": ResidualLamFit.fit([p[0] for p in pairs[s]], [p[1] for p in pairs[s]])}
            for kind in corruptions:
                own = [p for p, r in zip(pairs[s], study.rows, strict=True)
                       if r["corruption"] in (kind, "clean")]
                study.fits[s][kind] = ResidualLamFit.fit([p[0] for p in own], [p[1] for p in own])
        for row, (xt, correct, stats_test) in zip(study.rows, sets, strict=True):
            labels, chosen = adaptive_predict(model, xt, study.fit_for(row["corruption"]), probe, lams, batch,
                                              statistic)
            row["adaptive"] = float((labels == y_test).float().mean())
            row["adaptive_lam_mean"] = float(chosen.mean())
            row["adaptive_by"] = {}
            for s in STATISTICS:
                for by in FIT_KINDS:
                    pick = nearest(grid, study.fit_for(row["corruption"], s, by)(stats_test[s]))
                    hit = correct[pick, torch.arange(correct.shape[1])]
                    row["adaptive_by"][f"{s}/{by}"] = float(hit.float().mean())
        return study
