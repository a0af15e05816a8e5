"""The troublesome-kernel experiment on the shipped pair-trained networks: every number.

Usage::

    python benchmarks/kernel_experiment.py [--steps 100] [--restarts 2] [--out benchmarks/results]

For each shipped network trained with a near-kernel pair (``kernel_pair64_*``, see
``configs/kernel_pair64_*.yaml``) it reports, on its pair ``x*``, ``x* + z``: ``||z||``,
``||A z|| / ||z||``, the pair errors and ``delta``, the Lipschitz lower bound
``(||z|| - 2 delta) / ||A z||``, the amplification of ``e = A z``, the amplification the audit's
worst-case search finds with budget ``||A z||``, FIRENET's at the same point (stable setting
lam 1e-2, p 5, and defaults), the transfer of ``A z`` to a new phantom (cosine of the change
with ``z``), and, for ``z0`` exactly in the kernel, the hallucination identity gap. A network
of the same operator trained without the pair (``--baseline``, a checkpoint or run folder) is
reported beside ``kernel_pair64_r10`` when given. Prints a table and writes
``kernel_experiment.json``.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from stablerecon.audit import kernel_test, pair_bound, worst_case
from stablerecon.data import ellipses
from stablerecon.files import write_json
from stablerecon.nets import FIRENet
from stablerecon.training import TrainingData, available_pretrained, load, pretrained, read_checkpoint
from stablerecon.training.pretrained import pretrained_path

# FIRENET in its stable setting (lam 1e-2, 5 steps per restart) and with its defaults
FIRENET_SETTINGS = {"stable": {"lam": 1e-2, "inner": 5}, "default": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a run folder or checkpoint of the same network trained without the pair")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    names = [n for n in available_pretrained() if n.startswith("kernel_pair")]
    rows = {}
    firenets: dict[tuple[int, str], FIRENet] = {}
    for name in names:
        ck = read_checkpoint(pretrained_path(name))
        method = pretrained(name)
        op = method.op
        x_star, _, split = TrainingData(ck.config.data, op, seed=ck.config.seed).pair
        z, z0 = split.z.float(), split.z0.float()
        candidates = {name: method}
        if args.baseline is not None and name.endswith("r10"):
            candidates[f"{name} baseline (no pair)"] = load(args.baseline, op).eval()
        for label, net in candidates.items():
            res = pair_bound(net, x_star, op, z, search_steps=args.steps, restarts=args.restarts)
            size = int(op.in_shape[-1])
            fire = {}
            for setting, kwargs in FIRENET_SETTINGS.items():
                if (size, setting) not in firenets:
                    firenets[size, setting] = FIRENet(op, **kwargs)
                found = worst_case(firenets[size, setting], op.A(x_star), op, budgets=[float(res.budget[0])],
                                   steps=args.steps // 2, restarts=1)
                fire[setting] = float(found.amplification[0, 0])
            exact = kernel_test(net, x_star, op, z0, x_other=ellipses(1, size, seed=999))
            rows[label] = {
                "ratio": ck.config.data.pair.ratio, "jitter": ck.config.data.jitter,
                "z_norm": float(res.z_norm[0]), "Az_norm": float(res.measurement_norm[0]),
                "error_x": float(res.error_x[0]), "error_xz": float(res.error_xz[0]),
                "delta": float(res.delta[0]), "bound": float(res.bound[0]),
                "direct_amplification": float(res.direct[0]), "budget": float(res.budget[0]),
                "search_amplification": float(res.search[0]),
                "firenet_stable_amplification": fire["stable"],
                "firenet_default_amplification": fire["default"],
                "kernel_identity_gap": float(exact.identity_gap[0]),
                "kernel_hallucination": float(exact.hallucination[0]),
                "transfer_cosine": float(exact.transfer[0]),
            }
    payload = {"benchmark": "kernel_experiment", "machine": platform.platform(),
               "threads": torch.get_num_threads(), "steps": args.steps, "restarts": args.restarts,
               "rows": rows}
    write_json(args.out / "kernel_experiment.json", payload)
    head = (f"{'network':<38}{'r':>6}{'jit':>6}{'||z||':>7}{'err x':>7}{'err x+z':>8}{'bound':>7}"
            f"{'e=Az':>7}{'search':>8}{'FIRENET':>8}{'FN dflt':>8}{'id gap':>8}{'transfer':>9}")
    print(head)
    for label, r in rows.items():
        print(f"{label:<38}{r['ratio']:>6.2f}{r['jitter']:>6.2f}{r['z_norm']:>7.2f}{r['error_x']:>7.2f}"
              f"{r['error_xz']:>8.2f}{r['bound']:>7.2f}{r['direct_amplification']:>7.2f}"
              f"{r['search_amplification']:>8.2f}{r['firenet_stable_amplification']:>8.2f}"
              f"{r['firenet_default_amplification']:>8.2f}"
              f"{r['kernel_identity_gap']:>8.2f}{r['transfer_cosine']:>9.2f}")
    print(f"wrote {args.out / 'kernel_experiment.json'}")


if __name__ == "__main__":
    main()
