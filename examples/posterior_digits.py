"""What the measurements cannot tell apart: the full posterior of inpainted digits.

Run with ``python examples/posterior_digits.py [output folder]`` (default ``runs``; about 40 s
on 2 cores). Half of the pixels of 8 x 8 digits (``sklearn.datasets.load_digits``) are observed
with 1% noise. A conditional invertible network (cINN) learns the posterior p(x | y) from
simulations of the training digits; on unseen test digits the script measures

* where the uncertainty lies: the posterior standard deviation on unobserved against observed
  pixels, and the share of the sample variance in the null space of A;
* whether it is honest: the calibration error of the pixel-wise central intervals (e_cal) and
  simulation-based calibration (SBC);
* what the posterior mean is worth as a reconstruction (``PosteriorMean`` obeys
  ``method(y, op)``, so the stability audit can test it), against zero filling,

and saves ``posterior_digits.png`` (truth, zero-filled, posterior mean, std map, samples),
``posterior_calibration.png`` and ``posterior_sbc.png``.
"""

import sys
import time
from pathlib import Path

import torch

from stablerecon.metrics import psnr
from stablerecon.posterior import (
    ConditionalINN,
    DigitsProblem,
    PosteriorMean,
    calibration_error,
    image_figure,
    sbc_histogram,
    sbc_ranks,
    sbc_test,
)

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs")
setting = {"operator": "inpainting", "observed": 0.5, "noise_std": 0.01, "seed": 0}
train, test = DigitsProblem(split="train", **setting), DigitsProblem(split="test", **setting)

torch.manual_seed(0)
model = ConditionalINN(train.dim_x, train.dim_y, blocks=6, hidden=128)
start = time.perf_counter()
model.fit(train, steps=1500, batch=256, lr=1e-3)
print(f"cINN trained on {len(train.levels)} digits in {time.perf_counter() - start:.0f} s")

x, y = test.sample_joint(200, seed=1)  # unseen digits
samples = model.sample(y, 100, seed=2).double()  # (200, 100, 64)
std = samples.std(1)
hidden = test.unobserved.flatten()
print(f"posterior std: unobserved pixels {std[:, hidden].mean():.3f}, observed {std[:, ~hidden].mean():.4f}")
print(f"share of the sample variance in ker A: {test.null_space_fraction(samples).mean():.3f}")
cal = calibration_error(samples, x)
p_value, _ = sbc_test(samples, x)
print(f"calibration: median |e_cal| {cal.median_abs:.3f}, e_cal(68%) {cal.at_68:+.3f}, "
      f"SBC KS p {p_value:.2g}")

method = PosteriorMean(model, n_samples=64, op=test.op)
images = test.image(x).float()
x_mean = method(y.reshape(200, 1, -1).float(), test.op)
print(f"posterior mean PSNR {psnr(x_mean, images, data_range=1.0).mean():.2f} dB, "
      f"zero-filled PSNR {psnr(test.image(test.dagger(y)).float(), images, data_range=1.0).mean():.2f} dB")

out.mkdir(parents=True, exist_ok=True)
image_figure(test, samples[0], y=y[0], truth=x[0], n_show=4).savefig(out / "posterior_digits.png", dpi=100)
cal.figure("cINN, inpainted digits").savefig(out / "posterior_calibration.png", dpi=100)
ranks = sbc_ranks(samples[:, :, hidden], x[:, hidden])
sbc_histogram(ranks[:, :4], n_samples=100, bins=20).savefig(out / "posterior_sbc.png", dpi=100)
print("saved", ", ".join(str(out / name) for name in ("posterior_digits.png", "posterior_calibration.png",
                                                      "posterior_sbc.png")))
