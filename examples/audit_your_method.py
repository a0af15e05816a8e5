"""Audit your own reconstruction method: any function ``f(y, op) -> x_hat`` will do.

Run with ``python examples/audit_your_method.py [OUT]``. The method below is a plain Python
function (zero-filling followed by a median filter, computed in NumPy), so the audit cannot
differentiate through it and searches for worst-case perturbations without gradients (the
result says so). FIRENET runs beside it for comparison. Writes ``OUT/report.html``
(default ``runs/audit_example``).
"""

import sys

import numpy as np
import torch
from scipy.ndimage import median_filter

import stablerecon as sr


def median_zero_filled(y: torch.Tensor, op) -> torch.Tensor:  # noqa: ANN001 - any operator
    """Zero-filled reconstruction, then a 3 x 3 median filter on each image."""
    x = op.A_dagger(y).real.detach().cpu().numpy()
    return torch.from_numpy(np.stack([median_filter(img, size=(1, 3, 3)) for img in x]))


size = 64
op = sr.operators.SubsampledFourier(sr.operators.masks.variable_density(size, rate=0.25, seed=0))
images = {"shepp_logan": sr.data.shepp_logan(size), "ellipses": sr.data.ellipses(1, size, seed=5)}

x = torch.cat(list(images.values()))
zero = op.A_dagger(op.A(x)).real
print(f"zero-filled PSNR {float(sr.metrics.psnr(zero, x, data_range=1.0).mean()):.2f} dB")

out = sys.argv[1] if len(sys.argv) > 1 else "runs/audit_example"
result = sr.audit.run(
    {"median zero-filled": median_zero_filled, "FIRENET": sr.nets.FIRENet(op, restarts=6)},
    op, images, tests=["accuracy", "worst_case", "random_noise", "detail"],
    options={"budgets": [0.01, 0.05], "report_budget": 0.05, "steps": 10, "restarts": 1, "directions": 8,
             "draws": 5},
    out=out,
)
for row in result.summary():
    print(f"{row['method']:<20} PSNR {row['psnr']:.2f} dB  amplification {row['amplification']:.2f}  "
          f"{row['verdict']}")
print(f"report: {result.path / 'report.html'}")
