"""Quick start: simulate an MRI acquisition and reconstruct it with the zero-filled adjoint.

Run with ``python examples/quickstart.py``; prints the PSNR of the reconstruction and checks
the forward model (dot-product test, operator norm).
"""

import stablerecon as sr

x = sr.data.image("camera", size=128)  # (1, 1, 128, 128) in [0, 1]
mask = sr.operators.masks.variable_density(128, rate=0.25, seed=0)
op = sr.operators.SubsampledFourier(mask)  # y = P_Omega F x, ||A|| = 1
y = op.A(x)
y = y + sr.operators.noise.gaussian_like(y, rel=0.02, seed=0)  # 2% relative noise
x_hat = op.A_dagger(y).real  # zero-filled reconstruction
print(f"sampling rate {op.rate:.3f}")
print(f"PSNR {float(sr.metrics.psnr(x_hat, x, data_range=1.0)):.2f} dB")
print(f"adjointness error {op.adjointness_error():.2e}, norm {op.norm():.4f}")
