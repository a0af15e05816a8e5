"""Trained networks: the shipped U-Net post-processing and ItNet on held-out ellipse phantoms.

Run with ``python examples/trained_mri.py [output folder]`` (default ``runs``). Loads the
shipped weights (trained by ``stablerecon train configs/unet_fourier128.yaml`` and
``configs/itnet_fourier128.yaml``: 25% variable-density Fourier sampling at 128 x 128, random
ellipses, 1% noise), measures four phantoms the networks never saw, and compares them with the
zero-filled adjoint and TV. Prints PSNR/SSIM and saves ``trained_mri.png`` (reconstructions
and error maps).
"""

import sys
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import stablerecon as sr  # noqa: E402

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs")
unet = sr.training.pretrained("unet_fourier128")  # PostProcessing(UNet) with its operator
itnet = sr.training.pretrained("itnet_fourier128")
op = unet.op
x = sr.data.ellipses(4, size=128, seed=2026)  # phantoms from a seed outside the training stream
y = sr.operators.noise.add_gaussian(op.A(x), rel=0.01, seed=0)

with torch.no_grad():
    results = {
        "zero-filled": op.A_dagger(y).real,
        "TV": sr.solvers.SparseReconstructor("tv", op)(y),
        "U-Net post-processing": unet(y),
        "ItNet": itnet(y),
    }
for name, x_hat in results.items():
    psnr = float(sr.metrics.psnr(x_hat, x, data_range=1.0).mean())
    ssim = float(sr.metrics.ssim(x_hat, x, data_range=1.0).mean())
    print(f"{name:<24} PSNR {psnr:.2f} dB  SSIM {ssim:.3f}  (mean of {x.shape[0]} phantoms)")

fig, axes = plt.subplots(2, 5, figsize=(15, 6.2))
axes[0, 0].imshow(x[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
axes[0, 0].set_title("ground truth", fontsize=10)
axes[1, 0].axis("off")
for col, (name, x_hat) in enumerate(results.items(), start=1):
    axes[0, col].imshow(x_hat[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0, col].set_title(name, fontsize=10)
    axes[1, col].imshow((x_hat - x)[0, 0].abs().numpy(), cmap="magma", vmin=0, vmax=0.2)
    axes[1, col].set_title("|error| (0 to 0.2)", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "trained_mri.png", dpi=100)
print(f"saved {out / 'trained_mri.png'}")
