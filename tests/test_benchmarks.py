"""The benchmark scripts run, write their JSON atomically (and resume where they can)."""

from __future__ import annotations

import json
import math
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from stablerecon import files
from stablerecon.config import TrainingConfig, load_yaml
from stablerecon.training import build_model

BENCH = Path(__file__).parents[1] / "benchmarks"


@pytest.mark.slow
def test_parameter_study_writes_json_and_resumes(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "firenet_parameters.py"), "--sizes", "64", "--lams", "1e-2",
           "--inners", "2", "8", "--kinds", "fourier", "--out", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    payload = json.loads((tmp_path / "firenet_parameters.json").read_text())
    cases = payload["cases"]
    assert set(cases) == {"fourier/64/0.01/2", "fourier/64/0.01/8"}
    # p = 2 stalls (documented), p = 8 converges on the exactly sparse image
    assert cases["fourier/64/0.01/2"]["sparse_layers"] is None
    assert cases["fourier/64/0.01/8"]["sparse_final"] < 1e-5
    assert "fourier" in first.stdout and "stalls" in first.stdout
    assert not list(tmp_path.glob("*.tmp"))
    # a second run finds every case done and recomputes nothing
    (tmp_path / "firenet_parameters.json").write_text(json.dumps(payload | {"marker": 1}))
    subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    again = json.loads((tmp_path / "firenet_parameters.json").read_text())
    assert again["marker"] == 1 and again["cases"] == cases


def _run_in_process(script: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Run ``benchmarks/<script>`` as ``__main__`` in this process and return the paths it wrote
    through :func:`stablerecon.files.write_atomic` (every atomic write goes through it)."""
    written: list[Path] = []
    original = files.write_atomic

    def recording(path: Path, write):  # type: ignore[no-untyped-def]
        written.append(Path(path))
        original(path, write)

    monkeypatch.setattr(files, "write_atomic", recording)
    monkeypatch.setattr(sys, "argv", [str(BENCH / script), *args])
    monkeypatch.syspath_prepend(str(BENCH))
    runpy.run_path(str(BENCH / script), run_name="__main__")
    return written


def test_training_benchmark_compares_step_and_forward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark runs, writes training.json atomically with a row per preset whose timings
    are finite and positive and whose derived numbers follow from them (what the clock says is
    the benchmark's result, not the test's)."""
    written = _run_in_process("training.py", ["--repeats", "2", "--batch", "2", "--out", str(tmp_path)],
                              monkeypatch)
    out = capsys.readouterr().out
    assert written == [tmp_path / "training.json"]
    payload = json.loads((tmp_path / "training.json").read_text())
    assert payload["batch"] == 2 and payload["repeats"] == 2
    rows = payload["rows"]
    assert {"unet_fourier128", "itnet_fourier128"} <= set(rows)
    for name, row in rows.items():
        assert name in out
        timings = ("step_seconds", "forward_seconds", "train_samples_per_second",
                   "forward_samples_per_second", "ratio_step_over_forward", "schedule_minutes_at_this_rate")
        for key in timings:
            assert math.isfinite(row[key]) and row[key] > 0, (name, key, row[key])
        cfg = load_yaml(Path(row["config"]), TrainingConfig)
        model = build_model(cfg, cfg.operator.build())
        assert row["parameters"] == sum(p.numel() for p in model.parameters())
        assert row["schedule_steps"] == cfg.train.epochs * cfg.train.steps_per_epoch
        assert row["ratio_step_over_forward"] == pytest.approx(row["step_seconds"] / row["forward_seconds"])
        assert row["train_samples_per_second"] == pytest.approx(2 / row["step_seconds"])
        assert row["forward_samples_per_second"] == pytest.approx(2 / row["forward_seconds"])
        assert row["schedule_minutes_at_this_rate"] == pytest.approx(
            row["schedule_steps"] * row["step_seconds"] / 60)
    assert not list(tmp_path.glob("*.tmp"))


def test_audit_benchmark_times_the_search_against_bare_passes(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "audit.py"), "--steps", "3", "--size", "64", "--skip-demo",
           "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    payload = json.loads((tmp_path / "audit.json").read_text())
    rows = payload["worst_case"]
    assert set(rows) == {"U-Net", "FIRENET"} and payload["steps"] == 3
    for name, row in rows.items():
        assert name in out
        assert row["ratio_search_over_bare"] == pytest.approx(row["search_seconds"] / row["bare_seconds"])
        # what the clock says is the benchmark's to report, not a test's: only sane timings here
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("search_seconds", "bare_seconds"))
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_dip_benchmark_writes_json_and_resumes(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "dip.py"), "--quick", "--threads", "1", "--tasks", "sr", "denoise",
           "--out", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    payload = json.loads((tmp_path / "dip.json").read_text())
    sr_case = payload["tasks"]["sr"]["camera"]
    assert sr_case["schedule"] == 400 and sr_case["oracle_psnr"] >= sr_case["final_psnr"]
    denoise = payload["tasks"]["denoise"]["camera"]
    # a rule's choice lies within the iterations run, and its PSNR is the curve's at that point
    for rule in ("ES-WMV", "ES-EMV"):
        chosen = denoise[rule]
        assert chosen["iteration"] is None or chosen["iteration"] < chosen["iterations_run"] <= 400
        assert chosen["psnr"] is None or chosen["psnr"] <= denoise["oracle_psnr"]
    assert denoise["oracle_psnr"] >= denoise["ES-WMV"]["psnr"]
    assert "bicubic" in first.stdout and not list(tmp_path.glob("*.tmp"))
    (tmp_path / "dip.json").write_text(json.dumps(payload | {"marker": 1}))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    assert "sr: done" in again.stdout
    assert json.loads((tmp_path / "dip.json").read_text())["tasks"] == payload["tasks"]


def test_posterior_benchmark_writes_json_and_resumes(tmp_path: Path) -> None:
    """The quick run of every task: the ABC reference resimulates far better than the prior,
    the exact posterior is calibrated and its scaled versions are not, and a rerun resumes."""
    cmd = [sys.executable, str(BENCH / "posterior.py"), "--quick", "--threads", "1", "--out", str(tmp_path)]
    subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    payload = json.loads((tmp_path / "posterior.json").read_text())
    tasks = payload["tasks"]
    assert set(tasks) == {"gmm", "ablation", "ik", "linear", "speed", "digits"}
    assert tasks["ik"]["abc"]["Err_resim"] < 0.1 * tasks["ik"]["prior"]["Err_resim"]
    exact = tasks["linear"]["exact"]
    assert exact["T=0.8"]["ecal_68"] < exact["T=1.0"]["ecal_68"] < exact["T=1.2"]["ecal_68"]
    assert all(row["samples_per_s"] > 0 for row in tasks["speed"].values() if isinstance(row, dict))
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "posterior.json").write_text(json.dumps(payload | {"marker": 1}))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    assert "ik: done" in again.stdout
    assert json.loads((tmp_path / "posterior.json").read_text())["tasks"] == tasks


def test_csc_benchmark_times_the_layer_against_a_convolution_and_resumes(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "csc.py"), "--tasks", "speed", "--repeats", "2", "--threads", "1",
           "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    payload = json.loads((tmp_path / "csc.json").read_text())
    speed = payload["tasks"]["speed"]
    for row in speed["layers"]:
        assert row["ratio"] == pytest.approx(row["csc_ms"] / row["conv_ms"])
        assert all(math.isfinite(row[k]) and row[k] > 0 for k in ("csc_ms", "conv_ms"))
    assert speed["images_per_s"]["ratio"] == pytest.approx(
        speed["images_per_s"]["baseline"] / speed["images_per_s"]["SDNet"])
    assert "images/s" in out and not list(tmp_path.glob("*.tmp"))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    assert "speed: done" in again.stdout
    assert json.loads((tmp_path / "csc.json").read_text())["tasks"]["speed"] == speed


@pytest.mark.slow
def test_firenet_natural_writes_json_and_resumes(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "firenet_natural.py"), "--tasks", "timing", "--size", "32",
           "--repeats", "1", "--out", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    payload = json.loads((tmp_path / "firenet_natural.json").read_text())
    timing = payload["tasks"]["timing"]
    assert timing["old"]["layers"] == 96 and timing["new"]["layers"] == 42
    assert timing["ratio_forward"] > 0 and "ratio new/old" in first.stdout
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "firenet_natural.json").write_text(json.dumps(payload | {"marker": 1}))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    assert "done" in again.stdout
    assert json.loads((tmp_path / "firenet_natural.json").read_text())["marker"] == 1


@pytest.mark.slow
def test_audit_scale_benchmark_batched_and_ray_agree(tmp_path: Path) -> None:
    """The benchmark's batched and per-image searches agree image by image, and its Ray run
    reproduces the serial entries (the checks its table reports)."""
    pytest.importorskip("ray")
    cmd = [sys.executable, str(BENCH / "audit_scale.py"), "--tasks", "batched_unet", "ray", "--images", "3",
           "--steps", "2", "--ray-steps", "1", "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
    tasks = json.loads((tmp_path / "audit_scale.json").read_text())["tasks"]
    row = tasks["batched_unet"]
    assert row["max_amplification_diff"] < 1e-3 * max(1.0, row["median_amplification"])
    ratio = row["per_image_seconds"] / row["batched_seconds"]
    assert row["throughput_ratio"] == pytest.approx(ratio, rel=0.02)
    ray = tasks["ray"]
    assert ray["max_relative_entry_diff"] < 1e-3 and ray["units"] == 9
    assert "| (b) Ray" in out and not list(tmp_path.glob("*.tmp"))
