"""Audit a DeepInverse network beside FIRENET and TV, on a DeepInverse physics.

Run with ``python examples/audit_deepinv_model.py [OUT]`` where deepinv is installed
(``pip install 'stablerecon[deepinv]'``; ``make test-interop`` builds such an environment and
runs this script). A small DeepInverse U-Net (FBPConvNet-style post-processing of ``A^T y``) is
trained for a few seconds on random ellipses for DeepInverse's single-coil MRI physics (a
Cartesian line mask drawn by DeepInverse's generator, 3x acceleration), then audited with
stablerecon's stability tests beside FIRENET and TV on the same physics, seen through
``from_deepinv``. The network works on DeepInverse's two-channel (real, imaginary) images; the
audit sees complex images and k-space. Writes ``OUT/report.html`` (default: a new temporary folder).
"""

import sys
import tempfile

import torch

import stablerecon as sr
from stablerecon.interop.deepinv import from_deepinv, method_from_deepinv, require_deepinv

dinv = require_deepinv()  # an ImportError saying how to install deepinv if it is missing
torch.manual_seed(0)
size = 48
mask = dinv.physics.generator.GaussianMaskGenerator((size, size), acceleration=3).step(seed=0)["mask"]
physics = dinv.physics.MRI(mask=mask, img_size=(size, size))

# a DeepInverse network, trained briefly the DeepInverse way: net(y, physics)
net = dinv.models.ArtifactRemoval(dinv.models.UNet(2, 2, scales=3, batch_norm=False), mode="adjoint")
train = sr.data.ellipses(64, size, seed=1)
train = torch.cat([train, torch.zeros_like(train)], 1)  # real images as (real, imaginary) channels
optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
for step in range(100):
    x = train[8 * (step % 8): 8 * (step % 8) + 8]
    loss = torch.nn.functional.mse_loss(net(physics.A(x), physics), x)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()

op = from_deepinv(physics)  # the same physics as a stablerecon operator
images = {"shepp_logan": sr.data.shepp_logan(size), "ellipses": sr.data.ellipses(1, size, seed=5)}
methods = {"deepinv U-Net": method_from_deepinv(net.eval()), "FIRENET": sr.nets.FIRENet(restarts=6),
           "TV": sr.solvers.SparseReconstructor("tv", max_iter=100)}
out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="audit_deepinv_")
result = sr.audit.run(
    methods, op, images, tests=["accuracy", "worst_case", "random_noise"],
    options={"budgets": [0.01, 0.05], "report_budget": 0.05, "steps": 10, "restarts": 1, "draws": 5},
    out=out,
)
for row in result.summary():
    print(f"{row['method']:<14} PSNR {row['psnr']:.2f} dB  amplification {row['amplification']:.2f}  "
          f"{row['verdict']}")
print(f"report: {result.path / 'report.html'}")
