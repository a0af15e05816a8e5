"""The K-digits barrier benchmark, reduced: what Theorem 1 of Colbrook, Antun, Hansen (PNAS 2022)
forces on its construction, checked on every method the benchmark runs, and the resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from stablerecon.data.inexact_input import InexactInputProblem

BENCH = Path(__file__).parents[1] / "benchmarks"


@pytest.mark.slow
def test_no_method_beats_the_k_digit_floor_and_the_run_resumes(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "inexact_input.py"), "--Ks", "1", "3", "--ns", "10", "20",
           "--depths", "5", "--extra-depths", "--steps", "60", "--batch", "64", "--out", str(tmp_path)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    path = tmp_path / "inexact_input.json"
    payload = json.loads(path.read_text())
    cells = payload["cells"]
    assert set(cells) == {f"{m}/K{k}/n{n}{d}" for m, d in (("FIRENET", ""), ("LISTA", "/L5"))
                          for k in (1, 3) for n in (10, 20)}
    for key, cell in cells.items():
        p = InexactInputProblem(K=cell["K"], n=cell["n"])
        # the construction's closed form: inputs 2^-n close, solutions ~3 * 10^-K apart
        assert cell["input_distance"] <= 2.0 ** -cell["n"]
        assert cell["floor"] == pytest.approx(math.sqrt(2) / (p.c + 2.0 ** (-p.n - 1)) / 2, rel=1e-12)
        # part 1: whatever the method, one of the two problems with this input is missed by
        # at least the floor, which exceeds 10^-K (triangle inequality on the two errors)
        assert cell["err"] + cell["err_x2"] >= cell["gap"] * (1 - 1e-9), key
        assert cell["worst"] >= cell["floor"] * (1 - 1e-9) > 10.0 ** -cell["K"], key
        if cell["method"] == "FIRENET":  # part 3: K - 2 digits without any training data
            assert cell["err"] < 10.0 ** (2 - cell["K"]), key
    assert "| K | n | method" in first.stdout
    assert not list(tmp_path.glob("*.tmp"))
    # a second run finds every cell done and recomputes nothing
    path.write_text(json.dumps(payload | {"marker": 1}))
    subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    again = json.loads(path.read_text())
    assert again["marker"] == 1 and again["cells"] == cells
