"""tracker.lighting: the shading kernels against their NumPy references (odd shapes, every
grid step), the smoothed lightness against the exact full-resolution normalised
convolution, the skin sums behind the light estimate, and the opaque part's shading."""
import cv2
import numpy as np
import pytest

from tracker import lighting as LG
from tracker.colors import linear_to_srgb
from tracker.masks import Mask

SHAPES = [(1, 1), (5, 7), (13, 9), (31, 47), (64, 3)]


def case(shape, seed):
    """(lab float32 (3, H, W) with margins, mask float32 shape, y0, x0)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    lab = np.empty((3, h + 5, w + 4), np.float32)
    lab[0] = rng.uniform(0, 100, lab.shape[1:])
    lab[1:] = rng.uniform(-60, 60, (2,) + lab.shape[1:])
    mask = rng.uniform(0, 1, shape).astype(np.float32)
    mask[rng.uniform(size=shape) < 0.3] = 0.0
    return lab, mask, 3, 2


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_cell_sums_kernel_matches_reference(shape, step):
    lab, mask, y0, x0 = case(shape, seed=shape[0] * 5 + step)
    got = LG._cell_sums_nb(lab[0], mask, y0, x0, step)
    want = LG.cell_sums_reference(lab[0], mask, y0, x0, step)
    assert got.shape == want.shape == (-(-shape[0] // step), -(-shape[1] // step), 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_ratio_up_matches_reference(shape, step):
    rng = np.random.default_rng(shape[1] * 3 + step)
    h, w = shape
    small = (-(-h // step), -(-w // step))
    sums = np.empty(small + (2,), np.float32)
    sums[..., 1] = rng.uniform(0, 2, small)
    sums[..., 0] = sums[..., 1] * rng.uniform(0, 100, small)
    got = LG._ratio_up(sums, h, w, step)
    want = LG.ratio_up_reference(sums, h, w, step)
    assert got.shape == (h, w) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=0.05)  # OpenCV's fixed-point weights


@pytest.mark.parametrize("sigma", [1.5, 4.5, 6.6, 9.0])
def test_smooth_lightness_is_close_to_the_exact_normalised_convolution(sigma):
    # A smooth shading (a tilted plane) plus fine texture under a soft mask: on every grid
    # the coarse result is within a fraction of an L unit of the full-resolution one where
    # the mask has weight.
    rng = np.random.default_rng(int(sigma * 10))
    h, w = 83, 71
    yy, xx = np.mgrid[0:h, 0:w]
    lab = np.zeros((3, h, w), np.float32)
    lab[0] = 40 + 0.3 * xx + 0.1 * yy + rng.normal(0, 2, (h, w))
    r = np.hypot(yy - h / 2, xx - w / 2)
    mask = np.clip(1.2 - r / 30, 0, 1).astype(np.float32)
    got = LG.smooth_lightness(lab, mask, 0, 0, sigma)
    num = cv2.GaussianBlur(lab[0] * mask, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    den = cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    exact = num / np.maximum(den, 1e-6)
    on = mask > 0.05
    assert np.abs(got - exact)[on].max() < 1.0, sigma
    assert np.abs(got - exact)[on].mean() < 0.25, sigma


@pytest.mark.parametrize("shape", [(1, 1), (9, 13), (70, 61)])
@pytest.mark.parametrize("step", [1, 2, 3])
def test_skin_sums_kernel_matches_reference(shape, step):
    rng = np.random.default_rng(shape[0] + step)
    pix = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    mask = rng.uniform(0, 1, shape).astype(np.float32)
    mask[rng.uniform(size=shape) < 0.4] = 0.0
    got = LG._skin_sums_nb(pix, mask, step, LG.SRGB_TO_LINEAR_LUT)
    np.testing.assert_allclose(got, LG.skin_sums_reference(pix, mask, step), rtol=1e-9, atol=1e-9)


def test_face_light_of_an_empty_skin_mask_is_neutral():
    frame = np.full((20, 30, 3), 90, np.uint8)
    skin = Mask(np.zeros((10, 10), np.float32), 5, 5)
    assert list(LG.face_light(frame, skin)) == [1.0, 1.0, 1.0]


def test_opaque_shading_is_the_mean_where_the_mask_is_near_its_peak():
    smooth = np.arange(20, dtype=np.float32).reshape(4, 5)
    mask = np.zeros((4, 5), np.float32)
    mask[1, 1:4] = [0.8, 0.97, 0.95]  # peak 0.97: 0.95 counts, 0.8 does not
    mask[3, 0] = 0.5
    assert LG.opaque_shading(smooth, mask) == pytest.approx((7 + 8) / 2)
    assert LG.opaque_shading(smooth, np.zeros_like(mask)) == 50.0


@pytest.mark.parametrize("shape", SHAPES)
def test_opaque_shading_kernel_matches_reference(shape):
    rng = np.random.default_rng(shape[0] * 11 + shape[1])
    smooth = rng.uniform(0, 100, shape).astype(np.float32)
    mask = rng.uniform(0, 1, shape).astype(np.float32)
    got = LG._opaque_mean_nb(smooth, mask, LG.OPAQUE)
    assert got == pytest.approx(LG.opaque_shading_reference(smooth, mask), abs=1e-4)
    assert LG._opaque_mean_nb(smooth, np.zeros_like(mask), LG.OPAQUE) == 50.0


def test_linear_bgr_to_lab_inverts_lab_to_linear_bgr():
    rng = np.random.default_rng(7)
    for lab in [(0.0, 0.0, 0.0), (100.0, 0.0, 0.0), (3.0, 1.0, -1.0)] + list(
            zip(rng.uniform(5, 95, 20), rng.uniform(-40, 40, 20), rng.uniform(-40, 40, 20))):
        np.testing.assert_allclose(LG.linear_bgr_to_lab(LG.lab_to_linear_bgr(lab)), lab,
                                   atol=1e-6)



def test_the_numpy_paths_give_the_numba_results(monkeypatch):
    # Without Numba the public functions run the references: the same shading, opaque mean
    # and light within float rounding.
    lab, mask, y0, x0 = case((47, 61), seed=9)
    pix = np.random.default_rng(9).integers(0, 256, (60, 70, 3), dtype=np.uint8)
    skin = Mask(mask, 4, 2)
    got = [LG.smooth_lightness(lab, mask, y0, x0, s) for s in (1.5, 2.5, 6.6)]
    ref_nb = LG.opaque_shading(got[-1], mask)
    light = LG.face_light(pix, skin)
    monkeypatch.setattr(LG, "HAVE_NUMBA", False)
    for sigma, g in zip((1.5, 2.5, 6.6), got):
        np.testing.assert_allclose(LG.smooth_lightness(lab, mask, y0, x0, sigma), g, atol=0.05)
    assert LG.opaque_shading(got[-1], mask) == pytest.approx(ref_nb, abs=1e-4)
    np.testing.assert_allclose(LG.face_light(pix, skin), light, rtol=1e-9)


def test_a_skins_green_magenta_tint_is_not_read_as_the_light():
    # The same skin under a warm cast, once plain and once redder (its own tint along the
    # green-magenta axis): the light keeps the cast's level and warmth, not the tint.
    skin = Mask(np.ones((40, 40), np.float32), 0, 0)
    ref = LG.SKIN_REFERENCE_LINEAR
    warm = np.array([0.7, 0.95, 1.25]) * 0.8

    def frame(linear_bgr):
        srgb = np.round(255 * linear_to_srgb(linear_bgr)).astype(np.uint8)
        return np.broadcast_to(srgb, (40, 40, 3)).copy()

    plain = LG.face_light(frame(ref * warm), skin)
    redder = LG.face_light(frame(ref * warm * np.array([1.08, 0.85, 1.08])), skin)
    np.testing.assert_allclose(plain, LG.on_light_locus(warm), rtol=0.01)
    np.testing.assert_allclose(redder, plain, rtol=0.015)
    # a pure warm-cool cast and a level are on the locus: kept as they are
    np.testing.assert_allclose(LG.on_light_locus([0.6 / 1.2, 0.6, 0.6 * 1.2]), [0.5, 0.6, 0.72])
