"""Radial and spiral k-space trajectories, their analytic density compensation and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stablerecon.operators import trajectories as T


def nearest_sample_distance(traj: torch.Tensor, n: int) -> float:
    """Largest distance, in Nyquist cells 2 pi / n, from a Cartesian frequency inside the disk
    of radius pi (1 - 1/n) to its nearest trajectory sample."""
    grid = 2 * np.pi * (np.arange(n) - n // 2) / n
    ky, kx = np.meshgrid(grid, grid, indexing="ij")
    inside = np.hypot(ky, kx) <= np.pi * (1 - 1 / n)
    points = np.stack((ky[inside], kx[inside]), axis=1)
    samples = traj.numpy().T
    d2 = ((points[:, None, :] - samples[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d2.min(axis=1)).max() / (2 * np.pi / n))


# ----------------------------------------------------------------------------- radial
@pytest.mark.parametrize(("size", "spokes", "samples"), [(16, 26, None), (16, 5, 31), (32, 51, 64)])
def test_radial_spokes_are_equispaced_diameters(size: int, spokes: int, samples: int | None) -> None:
    traj = T.radial(size, spokes, samples)
    m = 2 * size if samples is None else samples
    assert traj.shape == (2, spokes * m) and traj.dtype == torch.float64
    assert float(traj.min()) >= -math.pi and float(traj.max()) < math.pi
    arms = traj.reshape(2, spokes, m).numpy()
    radius = np.arange(m) - m // 2  # signed position along the spoke, in steps of 2 pi / m
    for s in range(spokes):
        theta = math.pi * s / spokes
        direction = np.array([math.sin(theta), math.cos(theta)])
        np.testing.assert_allclose(arms[:, s, :], np.outer(direction, radius * 2 * np.pi / m), atol=1e-12)
    # Every spoke passes through the centre, and the readout reaches -pi (even samples).
    assert np.all(np.abs(arms[:, :, m // 2]) == 0)
    if m % 2 == 0:
        assert float(traj.min()) == -math.pi


def test_radial_golden_angle_increments() -> None:
    traj = T.radial(16, 40, golden=True).reshape(2, 40, 32)
    ky, kx = traj[0, :, 0].numpy(), traj[1, :, 0].numpy()  # the r = -pi end of each spoke
    theta = np.mod(np.arctan2(-ky, -kx), np.pi)  # the spoke's direction angle in [0, pi)
    steps = np.mod(np.diff(theta), np.pi)
    np.testing.assert_allclose(steps, np.pi * 2 / (1 + np.sqrt(5)), atol=1e-12)
    assert math.degrees(T.GOLDEN_ANGLE_RADIAL) == pytest.approx(111.24611797, abs=1e-7)
    assert np.all((theta >= 0) & (theta < np.pi))
    # Any number of consecutive golden spokes leaves no large angular gap (unlike a truncated
    # uniform ordering): the largest gap of the first 13 spokes is below 1.3 times the mean one.
    first = np.sort(theta[:13])
    gaps = np.diff(np.concatenate((first, [first[0] + np.pi])))
    assert gaps.max() < 1.3 * np.pi / 13


@pytest.mark.parametrize("n", [16, 32])
def test_nyquist_radial_covers_the_disk_and_fewer_spokes_do_not(n: int) -> None:
    assert T.nyquist_spokes(n) == math.ceil(math.pi * n / 2)
    assert nearest_sample_distance(T.radial(n, T.nyquist_spokes(n)), n) < 0.6
    assert nearest_sample_distance(T.radial(n, T.nyquist_spokes(n) // 3), n) > 0.9


# ----------------------------------------------------------------------------- analytic DCF
@pytest.mark.parametrize("golden", [False, True])
@pytest.mark.parametrize(("size", "spokes", "samples"), [(16, 26, 32), ((12, 20), 9, 40), (8, 7, 15)])
def test_radial_dcf_integrates_the_area_of_every_disk(size: int | tuple[int, int], spokes: int, samples: int,
                                                      golden: bool) -> None:
    """Sum of the weights of the samples with |r| <= m dr is the area of the disk of radius
    (m + 1/2) dr, in Nyquist cells (the weights are the Voronoi-like areas of the samples)."""
    h, w = (size, size) if isinstance(size, int) else size
    weights = T.radial_dcf(size, spokes, samples, golden=golden)
    traj = T.radial(max(h, w), spokes, samples, golden=golden)
    assert weights.shape == (spokes * samples,) and bool((weights > 0).all())
    dr = 2 * math.pi / samples
    radius = traj.norm(dim=0)
    cell = (2 * math.pi / h) * (2 * math.pi / w)
    for m in range(0, (samples - 1) // 2):
        inside = radius <= (m + 0.25) * dr
        area = math.pi * ((m + 0.5) * dr) ** 2 / cell
        assert float(weights[inside].sum()) == pytest.approx(area, rel=1e-12)


def test_radial_dcf_is_the_ramp_and_sums_to_the_disk() -> None:
    n, spokes = 32, T.nyquist_spokes(32)
    weights = T.radial_dcf(n, spokes).reshape(spokes, 2 * n)
    r = (np.arange(2 * n) - n) * (2 * np.pi / (2 * n))
    expected = np.abs(r) * (2 * np.pi / (2 * n)) * (np.pi / spokes) / (2 * np.pi / n) ** 2
    expected[n] = (2 * np.pi / (2 * n)) ** 2 / 4 * (np.pi / spokes) / (2 * np.pi / n) ** 2
    np.testing.assert_allclose(weights.numpy(), np.broadcast_to(expected, (spokes, 2 * n)), rtol=1e-12)
    assert float(weights.sum()) == pytest.approx(math.pi * n * n / 4, rel=2e-3)


# ----------------------------------------------------------------------------- spiral
@pytest.mark.parametrize(("size", "interleaves", "turns"), [(16, 4, None), (32, 8, None), (32, 3, 2.5)])
def test_spiral_arms_are_rotated_archimedean_spirals(size: int, interleaves: int,
                                                     turns: float | None) -> None:
    traj = T.spiral(size, interleaves, turns=turns)
    t = math.ceil(size / (2 * interleaves)) if turns is None else turns
    assert traj.shape[0] == 2 and traj.shape[1] % interleaves == 0
    m = traj.shape[1] // interleaves
    z = (traj[1] + 1j * traj[0]).numpy().reshape(interleaves, m)  # k_x + i k_y
    # Arm l is arm 0 rotated by 2 pi l / interleaves.
    for ell in range(interleaves):
        np.testing.assert_allclose(z[ell], z[0] * np.exp(2j * np.pi * ell / interleaves), atol=1e-12)
    # Archimedean: the unwrapped angle grows as 2 T r (the radius reaches pi after T turns),
    # and the radius increases monotonically from the centre.
    r = np.abs(z[0])
    angle = np.unwrap(np.angle(z[0][1:]))
    np.testing.assert_allclose(angle - angle[0], 2 * t * (r[1:] - r[1]), atol=1e-9)
    assert r[0] == 0 and np.all(np.diff(r) > 0)
    # Inside the Nyquist disk, reaching it up to one sample spacing.
    radius = np.abs(z)
    assert radius.max() < np.pi and radius.max() >= np.pi * (1 - 1 / m)
    assert float(traj.min()) >= -math.pi and float(traj.max()) < math.pi
    # Constant linear velocity: consecutive samples are evenly spaced along the arm, also near
    # the centre (sampling uniformly in angle instead would bunch them up there).
    chords = np.abs(np.diff(z[0]))
    assert chords.min() > 0.85 * chords.max()


def test_spiral_default_samples_and_golden_rotation() -> None:
    n = 32
    traj = T.spiral(n, 4)
    z = (traj[1] + 1j * traj[0]).numpy().reshape(4, -1)
    step = np.abs(np.diff(z[0])).max()
    assert step <= np.pi / n * 1.0001 and step > 0.95 * np.pi / n  # half the Nyquist spacing along the arm
    gold = T.spiral(n, 5, golden=True)
    zg = (gold[1] + 1j * gold[0]).numpy().reshape(5, -1)
    for ell in range(5):
        np.testing.assert_allclose(zg[ell], zg[0] * np.exp(1j * ell * T.GOLDEN_ANGLE_SPIRAL), atol=1e-12)
    assert math.degrees(T.GOLDEN_ANGLE_SPIRAL) == pytest.approx(137.50776405, abs=1e-7)
    assert T.spiral(n, 4, samples=50).shape == (2, 200)


@pytest.mark.parametrize("interleaves", [4, 16])
def test_nyquist_spiral_covers_the_disk_and_fewer_turns_do_not(interleaves: int) -> None:
    n = 32
    assert nearest_sample_distance(T.spiral(n, interleaves), n) < 0.6
    turns = math.ceil(n / (2 * interleaves))
    assert nearest_sample_distance(T.spiral(n, interleaves, turns=turns / 3), n) > 0.9


# ----------------------------------------------------------------------------- validation
def test_check_trajectory_accepts_and_converts() -> None:
    traj = T.radial(8, 3)
    out = T.check_trajectory(traj.float())
    assert out.dtype == torch.float64 and out.shape == traj.shape
    torch.testing.assert_close(out, traj.float().double())
    np_out = T.check_trajectory(traj.numpy(), "omega")
    torch.testing.assert_close(np_out, traj)
    edge = torch.tensor([[-math.pi, 0.0], [0.0, math.pi - 1e-9]], dtype=torch.float64)
    T.check_trajectory(edge)  # -pi is inside [-pi, pi)
    T.check_trajectory(torch.tensor([[-math.pi], [0.0]], dtype=torch.float32))  # float32 -pi too


@pytest.mark.parametrize(
    ("value", "error", "pattern"),
    [
        (torch.zeros(3, 4), ValueError, r"'traj'.*shape \(2, K\)"),
        (torch.zeros(2, 0), ValueError, r"'traj'.*shape"),
        (torch.zeros(8), ValueError, r"'traj'.*shape"),
        (torch.zeros(2, 2, 2), ValueError, r"'traj'.*shape"),
        (torch.tensor([[0.0, math.nan], [0.0, 0.0]]), ValueError, r"'traj'.*NaN"),
        (torch.tensor([[0.0, math.inf], [0.0, 0.0]]), ValueError, r"'traj'.*NaN or Inf"),
        (torch.tensor([[math.pi, 0.0], [0.0, 0.0]]), ValueError, r"'traj'.*\[-pi, pi\)"),
        (torch.tensor([[0.0, 0.0], [-3.2, 0.0]]), ValueError, r"'traj'.*\[-pi, pi\)"),
        (torch.tensor([[0.0, 0.0], [0.0, 6.0]]), ValueError, r"'traj'.*\[-pi, pi\)"),
        (torch.zeros(2, 4, dtype=torch.complex64), TypeError, r"'traj'.*real"),
        (torch.zeros(2, 4, dtype=torch.int64), TypeError, r"'traj'.*real"),
        ([[0.0], [0.0]], TypeError, r"'traj'.*torch.Tensor"),
    ],
)
def test_check_trajectory_rejects(value: object, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        T.check_trajectory(value)


def test_generators_reject_bad_arguments() -> None:
    for kwargs, name in (({"size": 0, "spokes": 4}, "size"), ({"size": 8, "spokes": 0}, "spokes"),
                         ({"size": 8, "spokes": 4, "samples": 1}, "samples"),
                         ({"size": 8, "spokes": 2.5}, "spokes")):
        with pytest.raises(ValueError, match=f"'{name}'"):
            T.radial(**kwargs)
    with pytest.raises(TypeError, match="'golden'"):
        T.radial(8, 4, golden="yes")  # type: ignore[arg-type]
    for kwargs, name in (({"interleaves": 0}, "interleaves"), ({"turns": 0}, "turns"),
                         ({"turns": -1.0}, "turns"), ({"turns": math.nan}, "turns"),
                         ({"samples": 1}, "samples"), ({"turns": True}, "turns")):
        with pytest.raises(ValueError, match=f"'{name}'"):
            T.spiral(8, **{"interleaves": 2, **kwargs})
    with pytest.raises(ValueError, match="'size'"):
        T.spiral(-1, 2)
    with pytest.raises(ValueError, match="'size'"):
        T.radial_dcf((8, 8, 8), 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'spokes'"):
        T.radial_dcf(8, 0)
    with pytest.raises(ValueError, match="'size'"):
        T.nyquist_spokes(0)
