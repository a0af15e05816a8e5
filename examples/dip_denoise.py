"""The Deep Image Prior: denoise a shipped image with no training data, stopped automatically.

Run with ``python examples/dip_denoise.py [output folder]`` (default ``runs``). Adds Gaussian
noise (sigma = 25/255) to a 64 x 64 ``camera``, fits an untrained skip network to it, and lets
ES-WMV (the windowed moving variance of the outputs) choose when to stop, without the truth.
The truth is passed only to record the PSNR curve for the figure. Prints PSNR of the noisy
image, of the chosen output and of the oracle peak, and saves ``dip_denoise.png`` (loss,
variance and PSNR curves) and ``dip_denoise_images.png``.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import stablerecon as sr  # noqa: E402
from stablerecon.nets.dip import DeepImagePrior, SkipNet, WindowedVariance  # noqa: E402

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs")
size = 64
x = sr.data.image("camera", size=size)  # (1, 1, 64, 64) in [0, 1]
y = x + 25 / 255 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
op = sr.operators.Identity(size)  # denoising: y = x + noise

torch.manual_seed(0)
generator = SkipNet(depth=4, channels_down=32, channels_up=32)  # the paper's layout, smaller
dip = DeepImagePrior(generator, steps=2000, early_stopping=WindowedVariance(window=100, patience=300))
result = dip.fit(y, op, truth=x)

print(f"noisy                PSNR {float(sr.metrics.psnr(y, x, data_range=1.0)):.2f} dB")
print(f"DIP, ES-WMV stop     PSNR {result.stop_psnr:.2f} dB at iteration {result.stop_iteration} "
      f"(ran {result.iterations_run} of {dip.steps})")
print(f"DIP, oracle peak     PSNR {result.oracle_psnr:.2f} dB at iteration {result.oracle_iteration}")

out.mkdir(parents=True, exist_ok=True)
result.figure("Deep Image Prior, sigma = 25/255").savefig(out / "dip_denoise.png", dpi=100)
fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
for ax, (name, img) in zip(axes, [("truth", x), ("noisy", y), ("DIP (ES-WMV)", result.image)], strict=True):
    ax.imshow(img[0, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_title(name, fontsize=10)
    ax.axis("off")
fig.tight_layout()
fig.savefig(out / "dip_denoise_images.png", dpi=100)
print(f"saved {out / 'dip_denoise.png'} and {out / 'dip_denoise_images.png'}")
