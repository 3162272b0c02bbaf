"""Curves through landmarks (tracker.curves): the Numba kernels against their NumPy references
on odd point counts, and the normals."""
import numpy as np
import pytest

from tracker import curves as C
from tracker.curves import (
    catmull_rom,
    catmull_rom_reference,
    normals,
    normals_reference,
    resample,
    resample_reference,
)


@pytest.mark.parametrize("n", [3, 4, 5, 7, 12, 17])
@pytest.mark.parametrize("closed", [False, True])
def test_curve_kernels_match_reference(n, closed):
    rng = np.random.default_rng(n * 2 + closed)
    for samples in (1, 3, 6, 8):
        p = rng.normal(100.0, 40.0, (n, 2))
        got, want = catmull_rom(p, samples, closed), catmull_rom_reference(p, samples, closed)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    curve = catmull_rom_reference(rng.normal(100.0, 40.0, (n, 2)), 5, closed)
    curve[2] = curve[1]  # a zero-length step
    for k in (2, 5, 24, 31):
        np.testing.assert_allclose(resample(curve, k), resample_reference(curve, k),
                                   rtol=0, atol=1e-9)


def test_catmull_rom_passes_through_its_points():
    p = np.array([[0.0, 0.0], [10.0, 3.0], [20.0, -2.0], [31.0, 5.0], [40.0, 0.0]])
    for closed in (False, True):
        c = catmull_rom(p, 6, closed)
        np.testing.assert_allclose(c[::6][:len(p)], p, atol=1e-9)


def test_resample_spaces_points_evenly():
    line = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    np.testing.assert_allclose(resample(line, 11)[:, 0], np.arange(11.0), atol=1e-12)


def test_normals_are_unit_and_point_the_given_way():
    t = np.linspace(0.0, np.pi, 9)
    arc = np.stack([np.cos(t), -np.sin(t)], 1) * 50.0  # an arc bulging toward -y
    for toward in (np.array([0.0, -1.0]), np.array([0.0, 1.0])):
        n = normals(arc, toward)
        np.testing.assert_allclose(np.hypot(n[:, 0], n[:, 1]), 1.0)
        assert np.all(n @ toward >= 0)
    # inside the arc the normal is the radius direction
    n = normals(arc, np.array([0.0, -1.0]))
    np.testing.assert_allclose(n[1:-1], arc[1:-1] / 50.0, atol=0.05)


@pytest.mark.parametrize("m", [2, 3, 7, 24, 29])
def test_normals_kernel_matches_reference(m):
    rng = np.random.default_rng(m)
    curve = np.cumsum(rng.normal(0.0, 3.0, (m, 2)), axis=0)
    curve[m // 2] = curve[m // 2 - 1]  # a repeated point: a zero central difference at m == 2
    for toward in (np.array([0.3, -1.0]), np.array([1.0, 0.0])):
        np.testing.assert_allclose(C._normals_nb(curve, *toward), normals_reference(curve, toward),
                                   rtol=0, atol=1e-12)
        np.testing.assert_array_equal(normals(curve, toward), C._normals_nb(curve, *toward))
