"""Blending kernels (tracker.blend) against their NumPy references and the BGR oracle, and
colour conversions.

The oracle (`tests/blend_oracle.py`) blends one product into a uint8 BGR image in float64
with exact conversions; the renderer's chain (`bgr_to_lab_planes`, `tint_lab_planes`,
`lab_planes_to_bgr`) must agree with it within 1 code value per channel on under 0.5% of
the values (float32 maths and a fitted cube root; they differ only where a value lands
within ~1e-4 of a rounding boundary). Means agree within 1e-3, the std of L within 1e-2.
"""
import cv2
import numpy as np
import pytest

from tests.blend_oracle import lab_stats, tint_bgr
from tracker.blend import (
    TintParams,
    bgr_to_lab_planes,
    bgr_to_lab_planes_reference,
    lab_planes_stats,
    lab_planes_stats_reference,
    lab_planes_to_bgr,
    lab_planes_to_bgr_reference,
    tint_lab_planes,
    tint_lab_planes_reference,
    tint_reference,
)
from tracker.colors import (
    bgr_to_lab,
    hex_to_bgr,
    hex_to_lab,
    hex_to_linear,
    lab_to_bgr,
    parse_hex,
)

SHAPES = [(1, 1), (3, 7), (17, 5), (37, 53), (64, 33)]


def random_case(shape, seed, gloss=0.0, intensity=1.0, strided=False):
    rng = np.random.default_rng(seed)
    h, w = shape
    if strided:  # a non-contiguous ROI view, as the renderer passes
        big = rng.integers(0, 256, (h + 5, 2 * w + 3, 3), dtype=np.uint8)
        img = big[2:2 + h, 1:1 + 2 * w:2]
    else:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.random(shape, dtype=np.float32)
    mask[mask < 0.25] = 0.0  # a zero part, as in real masks
    params = TintParams(
        color_lab=(float(rng.uniform(10, 90)), float(rng.uniform(-60, 70)),
                   float(rng.uniform(-50, 60))),
        ref_lightness=float(rng.uniform(20, 80)), texture_dark=float(rng.uniform(0.3, 1.3)),
        texture_light=float(rng.uniform(0.3, 1.3)), gloss=gloss, gloss_at=3.0,
        gloss_width=6.0, intensity=intensity)
    return img, mask, params


def planar_tint(image, mask, params, out=None, smooth=None):
    """One product through the renderer's chain: Lab planes, tint, back to BGR (into out,
    default a copy of image); smooth: the smoothed lightness (None: ref_lightness)."""
    lab = bgr_to_lab_planes(image)
    touched = np.zeros(image.shape[:2], np.uint8)
    tint_lab_planes(lab, mask, params, touched, smooth=smooth)
    out = image.copy() if out is None else out
    return lab_planes_to_bgr(lab, touched, out)


def planar_stats(image, mask):
    return lab_planes_stats(bgr_to_lab_planes(image), mask)


def assert_close_uint8(a, b):
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= 1, f"max diff {diff.max()}"
    assert (diff > 0).mean() <= 0.005, f"{(diff > 0).mean():.4f} of values differ"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gloss,intensity,strided", [
    (0.0, 1.0, False), (0.5, 0.6, False), (0.3, 1.0, True)])
def test_planar_chain_matches_oracle(shape, gloss, intensity, strided):
    seed = shape[0] * 100 + shape[1] + int(10 * gloss)
    img, mask, params = random_case(shape, seed, gloss=gloss, intensity=intensity,
                                    strided=strided)
    before = img.copy()
    smooth = (bgr_to_lab(img)[..., 0] + np.random.default_rng(seed).normal(0, 6, shape)
              ).astype(np.float32)
    out = planar_tint(img, mask, params, smooth=smooth)
    assert np.array_equal(img, before), "the chain must not modify its input"
    assert_close_uint8(out, tint_bgr(img, mask, params, smooth))


@pytest.mark.parametrize("shape", SHAPES)
def test_planar_stats_match_oracle(shape):
    img, mask, _ = random_case(shape, seed=7, strided=shape[0] % 2 == 1)
    # std of L within 1e-2: the kernel sums L^2 in float32 per row, and the variance
    # E[L^2] - E[L]^2 loses digits to cancellation (a 1-pixel mask: about 5e-5, sqrt 5e-3)
    diff = np.abs(planar_stats(img, mask) - lab_stats(img, mask))
    assert np.all(diff <= [1e-3, 1e-2, 1e-3, 1e-3]), diff


def test_lab_stats_empty_mask():
    img = np.zeros((4, 5, 3), np.uint8)
    mask = np.zeros((4, 5), np.float32)
    assert list(planar_stats(img, mask)) == [50.0, 0.0, 0.0, 0.0]
    assert list(lab_stats(img, mask)) == [50.0, 0.0, 0.0, 0.0]


def test_tint_reference_leaves_zero_weights_exactly():
    rng = np.random.default_rng(4)
    lab = bgr_to_lab(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8))
    alpha = rng.random((9, 11))
    alpha[:, :4] = 0.0
    _, _, params = random_case((9, 11), 4, gloss=0.5)
    new = tint_reference(lab[..., 0], lab[..., 1], lab[..., 2], alpha, params)
    for k in range(3):
        assert np.array_equal(new[k][:, :4], lab[:, :4, k])
        assert not np.allclose(new[k][:, 4:], lab[:, 4:, k])


def test_zero_mask_and_zero_intensity_are_bit_identical():
    img, mask, params = random_case((31, 29), seed=3, gloss=0.5)
    zero = np.zeros_like(mask)
    assert np.array_equal(planar_tint(img, zero, params), img)
    p0 = TintParams(**{**params.__dict__, "intensity": 0.0})
    assert np.array_equal(planar_tint(img, mask, p0), img)
    assert np.array_equal(tint_bgr(img, mask, p0), img)
    # Only pixels under the mask change.
    out = planar_tint(img, mask, params)
    assert np.array_equal(out[mask == 0], img[mask == 0])


def test_in_place_on_a_view_touches_only_the_view():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    before = frame.copy()
    view = frame[5:25, 10:41]
    mask = np.ones(view.shape[:2], np.float32)
    p = TintParams(color_lab=(40.0, 60.0, 40.0), ref_lightness=50.0)
    expected = tint_bgr(view.copy(), mask, p)
    planar_tint(view, mask, p, out=view)
    assert_close_uint8(frame[5:25, 10:41], expected)
    outside = np.ones(frame.shape[:2], bool)
    outside[5:25, 10:41] = False
    assert np.array_equal(frame[outside], before[outside])


@pytest.mark.parametrize("tint", [planar_tint, tint_bgr])
def test_blend_keeps_shading_and_moves_chroma(tint):
    # A lip-like gradient: after tinting, lightness differences survive and chroma moves
    # toward the product colour.
    grad = np.linspace(90, 200, 64).astype(np.uint8)
    img = np.stack([grad * 0.6, grad * 0.6, grad], -1).astype(np.uint8)[None].repeat(8, 0)
    mask = np.ones(img.shape[:2], np.float32)
    stats = lab_stats(img, mask)
    target = hex_to_lab("#b3001b")
    p = TintParams(color_lab=tuple(target), ref_lightness=stats[0])
    out = tint(img, mask, p)
    lab_in, lab_out = bgr_to_lab(img), bgr_to_lab(out)
    span_in = np.ptp(lab_in[..., 0])
    span_out = np.ptp(lab_out[..., 0])
    assert 0.7 * span_in < span_out < 1.4 * span_in
    d_in = np.hypot(*(lab_in[..., 1:].mean((0, 1)) - target[1:]))
    d_out = np.hypot(*(lab_out[..., 1:].mean((0, 1)) - target[1:]))
    assert d_out < 0.5 * d_in


@pytest.mark.parametrize("tint", [planar_tint, tint_bgr])
def test_gloss_brightens_only_highlights(tint):
    img = np.full((10, 10, 3), (80, 70, 150), np.uint8)
    img[4:6, 4:6] = (150, 150, 220)  # a bright spot
    mask = np.ones((10, 10), np.float32)
    stats = lab_stats(img, mask)
    kw = dict(color_lab=(40.0, 50.0, 20.0), ref_lightness=stats[0], gloss_at=2.0, gloss_width=4.0)
    matte = bgr_to_lab(tint(img, mask, TintParams(**kw)))[..., 0]
    gloss = bgr_to_lab(tint(img, mask, TintParams(gloss=0.6, **kw)))[..., 0]
    assert gloss[4:6, 4:6].mean() > matte[4:6, 4:6].mean() + 5
    np.testing.assert_allclose(gloss[0:3, 0:3], matte[0:3, 0:3], atol=0.5)


# --------------------------------------------------------------------------- colours

@pytest.mark.parametrize("text,rgb", [
    ("#b3001b", (0xb3, 0x00, 0x1b)), ("b3001b", (0xb3, 0x00, 0x1b)),
    ("#ABC", (0xaa, 0xbb, 0xcc)), ("abc", (0xaa, 0xbb, 0xcc)), ("  #FfFfFf ", (255, 255, 255))])
def test_parse_hex(text, rgb):
    assert parse_hex(text) == rgb
    assert hex_to_bgr(text) == rgb[::-1]


@pytest.mark.parametrize("bad", ["", "#", "red", "#12345", "#1234567", "#ggg", "0x123456",
                                 "#12 345", None, 123])
def test_parse_hex_rejects(bad):
    with pytest.raises(ValueError, match="#rrggbb"):
        parse_hex(bad)


def test_lab_matches_opencv():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    ours = bgr_to_lab(img)
    cv = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    np.testing.assert_allclose(ours, cv, atol=0.3)
    assert np.array_equal(lab_to_bgr(ours), img)


def test_hex_conversions():
    np.testing.assert_allclose(hex_to_lab("#ffffff"), [100.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(hex_to_lab("#000"), [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(hex_to_linear("#ff8000"), [0.0, 0.2158605, 1.0], rtol=1e-5)


# ------------------------------------------------- planar Lab (one face, all products)
#
# Tolerances: the kernels work in float32 with a fitted cube root (one Halley step), the
# references in float64 with np.cbrt: Lab within 3e-4 (L, a, b units); tinted Lab within
# 2e-3; BGR codes within 1 on under 0.5% of the pixels (a value within ~1e-4 of a rounding
# boundary), and exact for an identity round trip.

PLANAR_SHAPES = [(1, 1), (3, 7), (17, 5), (37, 53), (64, 33), (9, 130)]


def planar_case(shape, seed, strided=False):
    img, mask, _ = random_case(shape, seed, strided=strided)
    return img, mask


@pytest.mark.parametrize("shape", PLANAR_SHAPES)
@pytest.mark.parametrize("strided", [False, True])
def test_bgr_to_lab_planes_matches_reference(shape, strided):
    img, _ = planar_case(shape, seed=shape[0] * 31 + shape[1], strided=strided)
    lab = bgr_to_lab_planes(img)
    assert lab.dtype == np.float32 and lab.shape == (3,) + img.shape[:2]
    np.testing.assert_allclose(lab, bgr_to_lab_planes_reference(img), rtol=0, atol=3e-4)


def test_bgr_to_lab_planes_every_colour():
    v = np.arange(256, dtype=np.uint8)
    img = np.stack([*np.meshgrid(v, v, indexing="ij"), np.full((256, 256), 0, np.uint8)], -1)
    for third in (0, 77, 255):
        img[..., 2] = third
        np.testing.assert_allclose(bgr_to_lab_planes(img), bgr_to_lab_planes_reference(img),
                                   rtol=0, atol=3e-4)


def placed_case(shape, seed):
    """A Lab buffer a few pixels larger than the mask, the mask at an odd offset."""
    rng = np.random.default_rng(seed)
    h, w = shape
    big = rng.integers(0, 256, (h + 4, w + 7, 3), dtype=np.uint8)
    lab = bgr_to_lab_planes(big)
    mask = rng.random(shape, dtype=np.float32)
    mask[mask < 0.3] = 0.0
    return big, lab, mask, 3, 5  # y0, x0


@pytest.mark.parametrize("shape", PLANAR_SHAPES)
def test_lab_planes_stats_matches_reference(shape):
    _, lab, mask, y0, x0 = placed_case(shape, seed=shape[1])
    np.testing.assert_allclose(lab_planes_stats(lab, mask, y0, x0),
                               lab_planes_stats_reference(lab, mask, y0, x0), rtol=0, atol=1e-3)
    assert list(lab_planes_stats(lab, np.zeros_like(mask), y0, x0)) == [50.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("shape", PLANAR_SHAPES)
@pytest.mark.parametrize("gloss,intensity", [(0.0, 1.0), (0.5, 0.6), (0.3, 0.25)])
def test_tint_lab_planes_matches_reference(shape, gloss, intensity):
    seed = shape[0] * 7 + shape[1] + int(10 * gloss)
    _, lab, mask, y0, x0 = placed_case(shape, seed)
    _, _, params = random_case(shape, seed, gloss=gloss, intensity=intensity)
    got, want = lab.copy(), lab.copy()
    t_got = np.zeros(lab.shape[1:], np.uint8)
    t_want = np.zeros(lab.shape[1:], np.uint8)
    # a smoothed lightness near the pixels' own, as `smooth_lightness` gives
    h, w = shape
    smooth = (lab[0, y0:y0 + h, x0:x0 + w]
              + np.random.default_rng(seed).normal(0, 6, shape)).astype(np.float32)
    tint_lab_planes(got, mask, params, t_got, y0, x0, smooth)
    tint_lab_planes_reference(want, mask, params, t_want, y0, x0, smooth)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-3)
    assert np.array_equal(t_got, t_want)
    # Bit-identical wherever the weight is 0, inside the mask's rectangle and outside it.
    assert np.array_equal(got[:, t_got == 0], lab[:, t_got == 0])
    assert t_got.sum() == (mask > 0).sum()


def test_tint_lab_planes_zero_intensity_and_zero_mask_change_nothing():
    _, lab, mask, y0, x0 = placed_case((21, 19), seed=5)
    _, _, params = random_case((21, 19), 5, gloss=0.4)
    touched = np.zeros(lab.shape[1:], np.uint8)
    for m, p in ((mask, TintParams(**{**params.__dict__, "intensity": 0.0})),
                 (np.zeros_like(mask), params)):
        buf = lab.copy()
        tint_lab_planes(buf, m, p, touched, y0, x0)
        assert np.array_equal(buf, lab) and not touched.any()


@pytest.mark.parametrize("shape", PLANAR_SHAPES)
def test_lab_planes_to_bgr_matches_reference(shape):
    img, _, mask, y0, x0 = placed_case(shape, seed=shape[0] + 3)
    lab = bgr_to_lab_planes(img)
    _, _, params = random_case(shape, shape[0] + 3, gloss=0.3)
    touched = np.zeros(lab.shape[1:], np.uint8)
    tint_lab_planes(lab, mask, params, touched, y0, x0)
    frame = np.random.default_rng(0).integers(0, 256, (lab.shape[1] + 6, lab.shape[2] + 9, 3),
                                              dtype=np.uint8)
    before = frame.copy()
    view = frame[2:2 + lab.shape[1], 4:4 + lab.shape[2]]  # a strided view, as render passes
    lab_planes_to_bgr(lab, touched, view)
    on = touched.astype(bool)
    assert_close_uint8(view[on], lab_planes_to_bgr_reference(lab)[on])
    assert np.array_equal(view[~on], before[2:2 + lab.shape[1], 4:4 + lab.shape[2]][~on])
    outside = np.ones(frame.shape[:2], bool)
    outside[2:2 + lab.shape[1], 4:4 + lab.shape[2]] = False
    assert np.array_equal(frame[outside], before[outside])


def test_planar_round_trip_is_exact_for_every_colour():
    v = np.arange(256, dtype=np.uint8)
    img = np.stack([*np.meshgrid(v, v, indexing="ij"), np.zeros((256, 256), np.uint8)], -1)
    for third in range(0, 256, 15):
        img[..., 2] = third
        out = np.zeros_like(img)
        lab_planes_to_bgr(bgr_to_lab_planes(img), np.ones(img.shape[:2], np.uint8), out)
        assert np.array_equal(out, img), third


def test_planar_bad_arguments_raise():
    lab = np.zeros((3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="exceeds"):
        lab_planes_stats(lab, np.zeros((4, 5), np.float32), 1, 0)
    with pytest.raises(ValueError, match="lab must be"):
        lab_planes_stats(lab.astype(np.float64), np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="touched"):
        tint_lab_planes(lab, np.zeros((4, 5), np.float32), TintParams((50, 0, 0), 50),
                        np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="out must be"):
        lab_planes_to_bgr(lab, np.zeros((4, 5), np.uint8), np.zeros((4, 5, 3), np.float32))
