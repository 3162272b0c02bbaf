"""Makeup that belongs to the photo (issue 20), on synthetic faces where the answer is known.

The face is the mean 300-W shape over skin of exactly the reference colour
(`tracker.lighting.SKIN_REFERENCE_LAB`: a neutral light, normal exposure), with pink lips
striped by lip lines. There a product at full intensity must look like its swatch; in a
darkened or tinted copy of the photo the makeup must equal the made-up photo darkened or
tinted the same way (`tools.makeup_realism.expose`, linear light).
"""
import cv2
import numpy as np
import pytest

from tools.makeup_realism import expose, laplacian_energy, mean_lab, products, single
from tracker import regions as R
from tracker.colors import (SRGB_TO_LINEAR_LUT, bgr_to_lab, hex_to_lab, hex_to_linear, lab_to_bgr,
                            linear_to_srgb)
from tracker.lighting import SKIN_REFERENCE_LAB, face_light, linear_bgr_to_lab
from tracker.makeup import load_look, product_mask, render
from tracker.masks import FaceShape, blush_centers, face_coverage, skin_mask


def reference_face(seed=0, iod=110.0, size=(300, 320)):
    """(uint8 BGR image, float64 (68, 2) landmarks): reference skin, striped pink lips, a
    textured background (which makeup must leave alone)."""
    rng = np.random.default_rng(seed)
    h, w = size
    pts = np.array(R.MEAN_SHAPE) * iod + [w / 2, h * 0.42]
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    face = FaceShape(pts, img.shape)
    skin = np.array(lab_to_bgr(np.array(SKIN_REFERENCE_LAB)), np.float32)
    cover = face_coverage(face).to_frame(img.shape)[..., None]
    img = (img * (1 - cover) + skin * cover + rng.normal(0, 1.5, img.shape) * cover)
    lips = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lips, [np.round(face.lips_outer).astype(np.int32)], 1)
    lines = 0.9 + 0.1 * (np.arange(w) % 4 < 2)  # vertical lip lines, 2 px wide
    lip = np.array(lab_to_bgr(np.array([52.0, 28.0, 14.0])), np.float32)
    img = np.where(lips[..., None] > 0, lip * lines[None, :, None], img)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), pts


def weights(face, img, kind, product):
    return product_mask(face, img.shape, kind, product).to_frame(img.shape)


def test_light_of_the_reference_face_is_neutral_and_scales_with_exposure():
    img, pts = reference_face()
    face = FaceShape(pts, img.shape)
    np.testing.assert_allclose(face_light(img, skin_mask(face)), 1.0, atol=0.02)
    np.testing.assert_allclose(face_light(expose(img, 0.3), skin_mask(face)), 0.3, atol=0.01)
    warm = face_light(expose(img, (0.7, 0.95, 1.25)), skin_mask(face))
    np.testing.assert_allclose(warm, (0.7, 0.95, 1.25), rtol=0.02)


@pytest.mark.parametrize("kind", ["lips", "blush", "eyeshadow", "foundation"])
def test_full_intensity_on_a_neutral_face_looks_like_the_swatch(kind):
    img, pts = reference_face()
    face = FaceShape(pts, img.shape)
    product = dict(products(intensity=1.0))[kind]
    w = weights(face, img, kind, product)
    core = (w >= 0.8 * w.max()).astype(np.float32)
    got = mean_lab(render(img, [pts], single(kind, product)), core)
    want = hex_to_lab(product.color)
    assert abs(got[0] - want[0]) < 4.0, (got, want)
    assert abs(np.hypot(*got[1:]) - np.hypot(*want[1:])) < 5.0, (got, want)
    hue = np.degrees(np.arctan2(got[2], got[1]) - np.arctan2(want[2], want[1]))
    assert abs((hue + 180) % 360 - 180) < 5.0, (got, want)  # the target


@pytest.mark.parametrize("gains", [0.3, 0.6, 1.4, (0.7, 0.95, 1.25), (1.25, 1.0, 0.8)])
def test_makeup_commutes_with_exposure_and_casts(gains):
    img, pts = reference_face(seed=1)
    face = FaceShape(pts, img.shape)
    for kind, product in products():
        look = single(kind, product)
        w = weights(face, img, kind, product)
        ref = expose(render(img, [pts], look), gains)
        x = expose(img, gains)
        err = np.linalg.norm(mean_lab(render(x, [pts], look), w) - mean_lab(ref, w))
        change = np.linalg.norm(mean_lab(ref, w) - mean_lab(x, w))
        assert err <= 0.15 * change + 0.3, (kind, gains, err, change)


def test_a_dim_photo_gets_dim_lipstick():
    # The complaint: in a dim photo the lips glowed. At 0.3x the lipstick's L + 16
    # must scale by about 0.3 ** (1/3), like everything else in the photo.
    img, pts = reference_face(seed=2)
    face = FaceShape(pts, img.shape)
    product = dict(products(intensity=1.0))["lips"]
    core = (weights(face, img, "lips", product) >= 0.9).astype(np.float32)
    bright = mean_lab(render(img, [pts], single("lips", product)), core)
    dim = mean_lab(render(expose(img, 0.3), [pts], single("lips", product)), core)
    np.testing.assert_allclose((dim[0] + 16) / (bright[0] + 16), 0.3 ** (1 / 3), rtol=0.04)


def test_lip_texture_is_kept():
    img, pts = reference_face(seed=3)
    face = FaceShape(pts, img.shape)
    product = dict(products())["lips"]
    w = weights(face, img, "lips", product)
    inside = cv2.erode((w >= 0.99).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    before = laplacian_energy(bgr_to_lab(img)[..., 0], inside)
    after = laplacian_energy(bgr_to_lab(render(img, [pts], single("lips", product)))[..., 0],
                             inside)
    assert 0.6 <= after / before <= 1.6


def test_nothing_outside_the_face_changes():
    img, pts = reference_face(seed=4)
    face = FaceShape(pts, img.shape)
    for name in ("bold", "evening", "natural"):
        changed = np.any(render(img, [pts], load_look(name)) != img, axis=2)
        assert changed.any()
        assert not (changed & (face_coverage(face).to_frame(img.shape) == 0)).any(), name


def test_smooth_lightness_is_the_surface_mean_on_both_grids():
    from tracker.lighting import smooth_lightness
    rng = np.random.default_rng(5)
    h, w = 61, 47  # odd: the coarse grid is padded to whole cells
    lab = np.zeros((3, h + 4, w + 6), np.float32)
    lab[0] = 80.0  # bright skin around
    mask = np.zeros((h, w), np.float32)
    mask[10:50, 8:40] = 1.0
    lab[0, 2:2 + h, 3:3 + w][mask > 0] = 40.0 + rng.normal(0, 3, int(mask.sum()))
    for sigma in (1.5, 9.0):  # full resolution, then the coarse grid
        ls = smooth_lightness(lab, mask, 2, 3, sigma)
        assert ls.shape == mask.shape and ls.dtype == np.float32
        inside = ls[mask > 0]
        # the skin around does not lighten the lips' edge: the mean of the surface alone
        assert np.abs(inside - 40.0).max() < 3.0, sigma


def test_the_opaque_part_looks_like_the_swatch_where_the_surface_is_lit_unevenly():
    # Cheek apexes catch the light: the skin is 1.6x brighter (linear light) at the blush
    # centres, falling off over the blush's soft edge. At full intensity the blush's opaque
    # part must still average the swatch's lightness under the face's light: its colour is
    # placed at the shading there (`tracker.lighting.opaque_shading`), not at the soft
    # mask's mean, which the dimmer fringe pulls down (that made the apex too light).
    img, pts = reference_face(seed=6)
    face = FaceShape(pts, img.shape)
    left, right, radius = blush_centers(face)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    gain = np.ones(img.shape[:2])
    for c in (left, right):
        gain += 0.6 * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * (0.8 * radius) ** 2))
    lin = SRGB_TO_LINEAR_LUT[img] * gain[..., None]
    lit = np.floor(255.0 * linear_to_srgb(lin) + 0.5).astype(np.uint8)
    product = dict(products(intensity=1.0))["blush"]
    w = weights(face, lit, "blush", product)
    core = (w >= 0.95 * w.max()).astype(np.float32)
    got = mean_lab(render(lit, [pts], single("blush", product)), core)
    swatch = linear_bgr_to_lab(hex_to_linear(product.color) * face_light(lit, skin_mask(face)))
    assert abs(got[0] - swatch[0]) < 1.5, (got, swatch)


def test_shade_measurement_leaves_out_thin_dark_occluders():
    from tools.makeup_realism import occluders

    lab = np.zeros((40, 60, 3), np.float32)
    lab[...] = (55.0, 10.0, 12.0)  # a lid
    lab[20, 10:50, 0] = 25.0  # a lash line, 1 px
    lab[5:15, 5:15, 0] = 45.0  # a broad shadow: surface, not an occluder
    img = lab_to_bgr(lab.reshape(-1, 3)).reshape(40, 60, 3)
    occ = occluders(img)
    assert occ[20, 12:48].all()
    assert not occ[5:15, 5:15].any() and occ.sum() < 60
