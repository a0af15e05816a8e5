"""The report of a dataset audit stays small and readable: galleries of each method's worst
images only (checked against the entries), box plots of the per-image scores, medians with
bootstrap intervals in the tables, findings that do not grow with the number of images, and a
section listing the units that failed."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
import torch

import stablerecon as sr
from stablerecon.audit import AuditResult, run
from stablerecon.audit.options import AuditOptions
from stablerecon.audit.units import UnitKey
from stablerecon.report import findings, render_html
from stablerecon.report.figures import worst_gallery, worst_images

SIZE = 32
N_IMAGES = 40
OPTIONS = {"steps": 3, "restarts": 1, "batch_size": 8, "budgets": [0.01, 0.02, 0.05], "report_budget": 0.02,
           "not_rare_draws": 1}


def _op() -> sr.operators.SubsampledFourier:
    return sr.operators.SubsampledFourier(sr.operators.masks.variable_density(SIZE, 0.25, seed=0))


def _scaled(y: torch.Tensor, op: Any) -> torch.Tensor:
    return 1.5 * op.A_dagger(y).real


_scaled.differentiable = True  # type: ignore[attr-defined]


def _shrunk(y: torch.Tensor, op: Any) -> torch.Tensor:
    """Not differentiable-marked: attacked by the gradient-free search."""
    return 0.7 * op.A_dagger(y).real


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuditResult, Path, str]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path_factory.mktemp("dataset")
        methods = {"zero-filled": sr.nets.ZeroFilled(), "scaled 1.5": _scaled, "shrunk": _shrunk}
        x = sr.data.ellipses(N_IMAGES, SIZE, seed=0)
        result = run(methods, _op(), x, tests=["accuracy", "worst_case"], options=OPTIONS, out=folder,
                     progress=False)
    finally:
        torch.set_num_threads(previous)
    return result, folder, (folder / "report.html").read_text(encoding="utf-8")


def _captions(page: str) -> dict[str, str]:
    """``{figure title: caption}`` of the report's figures."""
    return dict(re.findall(r"<figcaption><b>(.*?)\.</b> (.*?)</figcaption>", page, flags=re.S))


def _amplification(result: AuditResult, method: str) -> list[float]:
    """Per image: the worst-case amplification, the largest over the budgets (from the entries)."""
    amp = result.entries[(method, "worst_case")]["amplification"]
    return [max(amp[b][i] for b in range(len(amp))) for i in range(len(result.images))]


def test_galleries_show_each_method_s_worst_images(audited: tuple[AuditResult, Path, str]) -> None:
    result, folder, page = audited
    k = result.options.worst_images
    assert len(result.images) == N_IMAGES > k
    captions = _captions(page)
    galleries = {t: c for t, c in captions.items() if t.startswith(("Worst images", "Reconstructions"))}
    # one gallery per method, none per image
    assert set(galleries) == {f"Worst images: {m}" for m in result.methods}
    assert not list((folder / "figures").glob("gallery_*.png"))
    for j, m in enumerate(result.methods):
        amp = _amplification(result, m)
        expected = sorted(range(N_IMAGES), key=lambda i: -amp[i])[:k]
        assert worst_images(result, m) == expected
        # the caption names exactly these k images, worst first, with their amplification
        named = re.findall(r"(image\d+) \(amplification ([\d.e+-]+)\)", galleries[f"Worst images: {m}"])
        assert [result.images.index(n) for n, _ in named] == expected
        assert [float(a) for _, a in named] == pytest.approx([amp[i] for i in expected], rel=5e-3)
        assert min(amp[i] for i in expected) >= max(amp[i] for i in range(N_IMAGES) if i not in expected)
        # k rows of six panels (truth, reconstruction, error, |A*e|, perturbed, change)
        fig = worst_gallery(result, m)
        assert fig is not None and len(fig.axes) == 6 * k
        rows = [ax.get_ylabel().split("\n")[0] for ax in fig.axes[::6]]
        assert rows == [result.images[i] for i in expected]
        plt.close(fig)
        assert (folder / "figures" / f"worst_{j:02d}.png").is_file()


def test_report_is_small_with_distributions_and_intervals(audited: tuple[AuditResult, Path, str]) -> None:
    result, folder, page = audited
    size = (folder / "report.html").stat().st_size
    assert size < 2_000_000, size  # far below the 20 MB budget of 100 images x 10 methods
    assert len(re.findall(r"<img ", page)) == len(list((folder / "figures").glob("*.png")))
    assert (folder / "figures" / "distributions.png").is_file() and 'alt="distributions"' in page
    # the header does not list every image
    assert "image39" not in page.split("<h2>Summary</h2>")[0]
    for row in result.summary():
        m, ci = row["method"], row["ci"]["amplification"]
        assert ci["n"] == N_IMAGES
        assert ci["low"] <= ci["median"] <= ci["high"]
        assert f"{ci['median']:.3g} [{ci['low']:.3g}, {ci['high']:.3g}]" in page
        p = row["ci"]["psnr"]
        assert f"{p['median']:.4g} [{p['low']:.4g}, {p['high']:.4g}]" in page
        amp = _amplification(result, m)
        assert row["worst_image"] == result.images[max(range(N_IMAGES), key=amp.__getitem__)]
        # per-budget table: the median over the images, not the mean
        changes = result.entries[(m, "worst_case")]["relative_error"][1]
        cells = re.search(rf'<tr><td class="text">{re.escape(m)}</td><td>2%</td><td>([^<]*)</td>', page)
        assert cells is not None and cells.group(1) == f"{statistics.median(changes):.3g}"
    assert "Failures" not in page


def test_worst_images_setting_sets_the_rows(audited: tuple[AuditResult, Path, str], tmp_path: Path) -> None:
    result, _, _ = audited
    five = AuditResult(result.methods, result.images, result.tests,
                       result.options.model_copy(update={"worst_images": 5}), result.operator,
                       units=result.units, path=result.path)
    fig = worst_gallery(five, "scaled 1.5")
    assert fig is not None and len(fig.axes) == 30
    plt.close(fig)
    amp = _amplification(result, "scaled 1.5")
    assert worst_images(five, "scaled 1.5") == sorted(range(N_IMAGES), key=lambda i: -amp[i])[:5]


def _detail_result(n: int) -> AuditResult:
    """A detail-only audit of ``n`` images where one method keeps the detail on every image and
    the other loses it: the detail finding has ``n`` cases."""
    methods = ["keeps", "loses"]
    units = {UnitKey(m, "detail", 0, n): {"kind": "blob", "contrast": 30 / 255, "recovered": [r] * n}
             for m, r in zip(methods, (0.9, 0.1), strict=True)}
    return AuditResult(methods, [f"img{i}" for i in range(n)], ["detail"], AuditOptions(batch_size=n), "fake",
                       units=units)


def test_findings_do_not_grow_with_the_images() -> None:
    small, large = _detail_result(20), _detail_result(500)
    notes = {n: next(t for t in findings(r) if t.startswith("Detail"))
             for n, r in ((20, small), (500, large))}
    assert "on 500 of 500 images" in notes[500] and "... and 495 more images" in notes[500]
    assert "img0," in notes[500] and "img5," not in notes[500]
    assert abs(len(notes[500]) - len(notes[20])) < 10
    page = render_html(large, [], notes=findings(large))
    assert "img499" not in page and len(page) < 30_000


class _FailsOnBright:
    """The zero-filled reconstruction, raising on a batch holding a bright image."""

    differentiable = True

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def __call__(self, y: torch.Tensor, op: Any) -> torch.Tensor:
        x = op.A_dagger(y).real
        if bool((x.mean(dim=(1, 2, 3)) > self.limit).any()):
            raise ValueError("a bright image")
        return x


def test_failed_units_are_listed_beside_the_other_results(tmp_path: Path, one_thread: None) -> None:
    op = _op()
    x = sr.data.ellipses(24, SIZE, seed=1)
    x[8:16] = 0.8 + 0.2 * x[8:16]  # the second chunk (batch_size 8) is bright
    means = op.A_dagger(op.A(x)).real.mean(dim=(1, 2, 3))
    dark = [i for i in range(24) if not 8 <= i < 16]
    limit = 0.5
    assert float(means[dark].max()) < limit - 0.2 and float(means[8:16].min()) > limit + 0.2
    with pytest.warns(RuntimeWarning, match="a bright image"):
        result = run({"zf": sr.nets.ZeroFilled(), "flaky": _FailsOnBright(limit)}, op, x,
                     tests=["accuracy", "worst_case"], options=OPTIONS, out=tmp_path, progress=False)
    assert sorted(k.label for k in result.failures) == ["flaky: accuracy [8:16]", "flaky: worst_case [8:16]"]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    failures = page.split("<h2>Failures</h2>")[1].split("<h2>")[0]
    for label in ("flaky: accuracy [8:16]", "flaky: worst_case [8:16]"):
        assert f"<td class=\"text\">{label}</td>" in failures
    assert failures.count("ValueError") == 2 and failures.count("a bright image") == 2
    assert "zf:" not in failures
    # the other method's results are all there
    captions = _captions(page)
    assert "Worst images: zf" in captions and "Worst images: flaky" not in captions
    zf = next(r for r in result.summary() if r["method"] == "zf")
    ci = zf["ci"]["amplification"]
    assert f"{ci['median']:.3g} [{ci['low']:.3g}, {ci['high']:.3g}]" in page
    assert math.isfinite(zf["psnr"])
    assert any("failed" in n and "flaky" in n for n in findings(result))
