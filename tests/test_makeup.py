"""Makeup masks and rendering (tracker.masks, tracker.makeup), on synthetic and real faces.

Synthetic faces are the mean 300-W shape (`tracker.regions.MEAN_SHAPE`) scaled into a
frame; real faces are a few 300-W HELEN crops with their .pts landmarks from
../shared/data (skipped, with the reason, when that folder is absent).
"""
import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.blend_oracle import lab_stats
from tracker import masks as M
from tracker import regions as R
from tracker.cli import add_look_arguments, look_from_args
from tracker.colors import bgr_to_lab, hex_to_lab
from tracker.makeup import (
    FINISHES,
    PRODUCT_KINDS,
    Look,
    Product,
    apply_product,
    available_looks,
    load_look,
    look_from_dict,
    look_to_dict,
    look_with_overrides,
    product_mask,
    render,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HELEN = DATA / "300w" / "helen" / "trainset"
# Neutral, smiling with teeth, darker skin, wide-open mouth.
REAL_FACES = ("103236168_1", "1238488784_1", "1265948983_1", "118736733_1")
OPEN_MOUTH = "118736733_1"

needs_data = pytest.mark.skipif(
    not HELEN.is_dir(), reason=f"300-W data not found at {HELEN} (../shared beside the repo)")


# ------------------------------------------------------------------------- fixtures

def synthetic_face(iod=100.0, center=(160.0, 150.0), mouth_open=0.0, roll_deg=0.0):
    """Mean-shape landmarks (68, 2) float32; mouth_open (x iod) drops the lower lip/jaw."""
    p = np.array(R.MEAN_SHAPE, dtype=np.float64)
    if mouth_open:
        p[[65, 66, 67]] += [0.0, mouth_open]
        p[55:60] += [0.0, mouth_open]
        p[[5, 6, 7, 8, 9, 10, 11]] += [0.0, mouth_open]
    a = np.radians(roll_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (p @ rot.T * iod + center).astype(np.float32)


def skin_image(shape=(320, 320), seed=0):
    """A skin-toned frame with mild texture and a lighting gradient (uint8 BGR)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    base = np.array([120, 145, 190], np.float32)
    shade = np.linspace(0.8, 1.1, w, dtype=np.float32)[None, :, None]
    img = base * shade + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def read_pts(path: Path) -> np.ndarray:
    """Standard 300-W .pts (1-based) -> float32 (68, 2), 0-based pixel centres."""
    lines = [s.strip() for s in path.read_text().splitlines()]
    assert lines[0].startswith("version") and lines[1].split(":")[1].strip() == "68"
    start = lines.index("{") + 1
    pts = np.array([[float(v) for v in s.split()] for s in lines[start:start + 68]])
    assert lines[start + 68] == "}"
    return (pts - 1.0).astype(np.float32)


def real_face(name):
    img = cv2.imread(str(HELEN / f"{name}.jpg"))
    assert img is not None, name
    return img, read_pts(HELEN / f"{name}.pts")


def fill(shape, polygon, erode_px=0.0, dilate_px=0.0):
    """Boolean frame mask of a polygon, optionally eroded / dilated by some pixels."""
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(polygon) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    k = int(round(max(erode_px, dilate_px)))
    if k > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        m = cv2.erode(m, kernel) if erode_px else cv2.dilate(m, kernel)
    return m.astype(bool)


def all_masks(points, shape, wing=True):
    face = M.FaceShape(points, shape)
    return {
        "foundation": M.skin_mask(face),
        "blush": M.blush_mask(face),
        "eyeshadow": M.eyeshadow_mask(face),
        "eyeliner": M.eyeliner_mask(face, wing=wing),
        "brows": M.brows_mask(face),
        "lips": M.lips_mask(face),
    }


def full_look(intensity=1.0):
    return Look(
        name="test",
        foundation=Product("auto", 0.5),
        blush=Product("#d9536f", 0.6),
        eyeshadow=Product("#6b4e9b", 0.7, finish="gloss"),
        eyeliner=Product("#111111", 0.9, wing=True),
        brows=Product("#3d2b22", 0.5),
        lips=Product("#b3001b", 0.9, finish="gloss"),
        intensity=intensity,
    )


FACES = {
    "frontal": dict(),
    "open_mouth": dict(mouth_open=0.3),
    "rolled": dict(roll_deg=17.0, iod=80.0),
}


# ---------------------------------------------------------------- masks: synthetic

@pytest.mark.parametrize("face_kw", FACES.values(), ids=FACES.keys())
def test_every_mask_lies_inside_the_face(face_kw):
    pts = synthetic_face(**face_kw)
    shape = (320, 320)
    iod = M.face_frame(pts).iod
    face_region = fill(shape, M.face_polygon(pts), dilate_px=0.05 * iod)
    x0, y0, x1, y1 = M.face_roi(pts, shape)
    for kind, m in all_masks(pts, shape).items():
        assert m.data.dtype == np.float32 and m.data.ndim == 2
        assert 0.0 <= m.data.min() and m.data.max() <= 1.0, kind
        assert m.data.max() > 0.5, f"{kind} mask is empty"
        (rows, cols) = m.slices
        assert x0 <= cols.start and cols.stop <= x1 and y0 <= rows.start and rows.stop <= y1, kind
        full = m.to_frame(shape)
        assert full[~face_region].max(initial=0.0) == 0.0, f"{kind} leaks outside the face"


@pytest.mark.parametrize("face_kw", FACES.values(), ids=FACES.keys())
def test_lips_mask_covers_lips_and_spares_open_mouth(face_kw):
    kw = dict(face_kw, iod=2 * face_kw.get("iod", 100.0), center=(240.0, 200.0))
    pts = synthetic_face(**kw)  # a large face: the mean upper lip is thin
    shape = (480, 480)
    iod = M.face_frame(pts).iod
    face = M.FaceShape(pts, shape)
    lips = M.lips_mask(face).to_frame(shape)
    edge = 2 * M.FEATHER["lips"] * iod + 1  # 2 sigma of feathering, plus a pixel
    body = fill(shape, face.lips_outer, erode_px=edge) & ~fill(shape, face.lips_inner,
                                                               dilate_px=edge)
    assert body.sum() > 50
    assert lips[body].mean() > 0.8 and lips[body].min() > 0.5
    assert lips[~fill(shape, face.lips_outer, dilate_px=2 * edge)].max() == 0.0
    mouth = fill(shape, face.lips_inner, erode_px=edge)
    if face_kw.get("mouth_open"):
        assert mouth.sum() > 100
        assert lips[mouth].mean() < 0.02 and lips[mouth].max() < 0.2


def test_eye_masks_follow_the_eyes():
    pts = synthetic_face()
    shape = (320, 320)
    iod = M.face_frame(pts).iod
    face = M.FaceShape(pts, shape)
    shadow = M.eyeshadow_mask(face).to_frame(shape)
    liner = M.eyeliner_mask(face).to_frame(shape)
    winged = M.eyeliner_mask(face, wing=True).to_frame(shape)
    for eye, lid in zip(face.eyes, face.lids):
        inside = fill(shape, eye, erode_px=0.03 * iod)
        assert shadow[inside].max() < 0.1, "eyeshadow over the eye itself"
        # Just above the middle of the lid: shadow present; far below the eye: none.
        up = -M.face_frame(pts).down
        mid = lid[len(lid) // 2]
        x, y = np.round(mid + up * 0.06 * iod).astype(int)
        assert shadow[y, x] > 0.4
        x, y = np.round(mid - up * 0.35 * iod).astype(int)
        assert shadow[y, x] == 0.0 and liner[y, x] == 0.0
        # The liner sits on the lid line, mostly in its outer half.
        on_lid = [liner[int(round(q[1])), int(round(q[0]))] for q in lid[3:-3]]
        assert min(on_lid) > 0.3
        assert liner[inside].mean() < 0.2
    assert winged.sum() > liner.sum() * 1.1, "the wing adds area past the outer corners"
    # The wing reaches past the outer eye corners.
    for corner, sign in ((pts[36], -1), (pts[45], 1)):
        x, y = np.round(corner + [sign * 0.05 * iod, -0.015 * iod]).astype(int)
        assert winged[y, x] > liner[y, x] + 0.3


def test_blush_brows_skin_placement():
    pts = synthetic_face()
    shape = (320, 320)
    iod = M.face_frame(pts).iod
    face = M.FaceShape(pts, shape)
    blush = M.blush_mask(face).to_frame(shape)
    brows = M.brows_mask(face).to_frame(shape)
    skin = M.skin_mask(face).to_frame(shape)
    eyes = fill(shape, face.eyes[0]) | fill(shape, face.eyes[1])
    lips = fill(shape, face.lips_outer, erode_px=2)  # the fade may touch the lip line
    left, right, radius = M.blush_centers(face)
    for c in (left, right):
        x, y = np.round(c).astype(int)
        assert blush[y, x] > 0.9 and skin[y, x] > 0.9
        # Cheeks are below the eyes and above the mouth corners, outside the nose.
        assert pts[41, 1] < c[1] < pts[48, 1]
        assert abs(c[0] - pts[30, 0]) > 0.3 * iod
    nose_tip = np.round(pts[30]).astype(int)
    assert blush[nose_tip[1], nose_tip[0]] < 0.1
    for m in (blush, skin):
        assert m[eyes].max() < 0.05 and m[lips].max() < 0.05
    # Brows: filled just under the annotated (upper) brow line, not on the eyes.
    for i in (19, 24):
        x, y = np.round(pts[i] + [0, 0.04 * iod]).astype(int)
        assert brows[y, x] > 0.8
    assert brows[eyes].max() == 0.0
    # Foundation covers the cheeks, the nose bridge and the chin.
    for q in (pts[29], (pts[8] + pts[57]) / 2):
        x, y = np.round(q).astype(int)
        assert skin[y, x] > 0.9


def test_masks_scale_with_the_face():
    shape = (480, 480)
    small = all_masks(synthetic_face(iod=60, center=(240, 200)), shape)
    big = all_masks(synthetic_face(iod=120, center=(240, 200)), shape)
    for kind in small:
        ratio = big[kind].data.sum() / small[kind].data.sum()
        assert 2.5 < ratio < 5.5, f"{kind}: area ratio {ratio:.2f} for 2x the face"


def test_masks_are_stable_under_translation():
    shape = (320, 320)
    pts = synthetic_face(center=(150.3, 140.7))
    base = all_masks(pts, shape)
    moved = all_masks(pts + np.float32([7, -4]), shape)
    nudged = all_masks(pts + np.float32([0.25, 0.25]), shape)
    for kind in base:
        # Integer shift: the same mask, shifted.
        a, b = base[kind], moved[kind]
        assert (b.x0 - a.x0, b.y0 - a.y0) == (7, -4), kind
        np.testing.assert_allclose(a.data, b.data, atol=1e-6, err_msg=kind)
        # Quarter-pixel nudge: small, smooth change (sub-pixel rasterisation).
        fa, fb = a.to_frame(shape), nudged[kind].to_frame(shape)
        assert np.abs(fa - fb).max() < 0.45, kind
        assert abs(fb.sum() / fa.sum() - 1.0) < 0.03, kind


def test_face_partly_or_fully_outside_the_frame():
    shape = (200, 240)
    img = skin_image(shape)
    for center in ((10.0, 60.0), (230.0, 190.0), (-400.0, 100.0)):
        pts = synthetic_face(iod=90, center=center)
        for m in all_masks(pts, shape).values():
            assert m.to_frame(shape).shape == shape
        out = render(img, [pts], full_look())
        assert out.shape == img.shape
    out = render(img, [synthetic_face(iod=90, center=(-400.0, 100.0))], full_look())
    assert np.array_equal(out, img)


def test_bad_landmarks_raise():
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        M.lips_mask(np.zeros((67, 2)), (10, 10))
    pts = synthetic_face()
    pts[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        render(skin_image(), [pts], full_look())


def test_lip_halves_make_up_the_lip_contours():
    # The renderer draws each lip half as its own curve: together they are the contours.
    assert R.UPPER_LIP_OUTER + R.LOWER_LIP_OUTER[1:-1] == R.LIPS_OUTER
    assert R.UPPER_LIP_INNER + R.LOWER_LIP_INNER[1:-1] == R.LIPS_INNER
    assert R.UPPER_LIP_OUTER[-1] == R.LOWER_LIP_OUTER[0] and R.LOWER_LIP_OUTER[-1] == 48
    assert set(R.LEFT_LOWER_LID) < set(R.LEFT_EYE) and set(R.RIGHT_LOWER_LID) < set(R.RIGHT_EYE)


def test_half_resolution_masks_match_full_resolution(monkeypatch):
    # Foundation, blush and eyeshadow are built on a half-resolution grid; built at full
    # resolution instead they look the same.
    pts = synthetic_face(iod=110.0, center=(200.0, 170.0), roll_deg=8.0)
    shape = (360, 400)
    half = all_masks(pts, shape)
    monkeypatch.setattr(M, "HALF_RES_SIGMA", np.inf)
    full = all_masks(pts, shape)
    for kind in ("foundation", "blush", "eyeshadow"):
        a, b = half[kind].to_frame(shape), full[kind].to_frame(shape)
        inside = (a > 0) | (b > 0)
        assert np.abs(a - b)[inside].mean() < 0.01, kind
        assert np.abs(a - b).max() < 0.15, kind
        assert abs(a.sum() / b.sum() - 1.0) < 0.01, kind


def test_render_matches_product_by_product():
    # render converts each face to Lab once for all products; applying them one by one
    # (a uint8 round trip after each) gives the same picture within a code value or two
    # (three at a few pixels: one by one, each product reads the face's light from a skin
    # the products before it have changed, by up to 4% here).
    img = skin_image()
    pts = synthetic_face(mouth_open=0.1)
    look = full_look()
    one_by_one = img.copy()
    for kind, product in look.products():
        apply_product(one_by_one, pts, kind, product)
    d = np.abs(render(img, [pts], look).astype(int) - one_by_one)
    assert d.max() <= 3 and (d > 1).mean() < 0.002


# ------------------------------------------------------------------ render: synthetic

def union_of_masks(points, shape, look):
    total = np.zeros(shape[:2], np.float32)
    face = M.FaceShape(points, shape)
    for kind, product in look.products():
        total = np.maximum(total, product_mask(face, shape, kind, product).to_frame(shape))
    return total


@pytest.mark.parametrize("face_kw", FACES.values(), ids=FACES.keys())
def test_render_changes_only_inside_masks_and_not_its_input(face_kw):
    img = skin_image()
    pts = synthetic_face(**face_kw)
    look = full_look()
    before = img.copy()
    out = render(img, [pts], look)
    assert np.array_equal(img, before), "render mutated its input"
    assert out.dtype == np.uint8 and out.shape == img.shape and out is not img
    union = union_of_masks(pts, img.shape, look)
    changed = np.any(out != img, axis=2)
    assert not changed[union == 0].any(), "pixels changed outside every mask"
    assert changed.sum() > 0.5 * (union > 0.2).sum()


def test_render_is_deterministic_and_handles_several_faces():
    img = skin_image((300, 560))
    faces = [synthetic_face(iod=90, center=(140, 130)), synthetic_face(iod=70, center=(420, 150),
                                                                       roll_deg=-10)]
    look = full_look()
    a = render(img, faces, look)
    b = render(img.copy(), [f.copy() for f in faces], look)
    assert np.array_equal(a, b)
    one = render(img, faces[:1], look)
    # The second face's change is confined to its own region.
    x0, y0, x1, y1 = M.face_roi(faces[1], img.shape)
    diff = np.any(a != one, axis=2)
    assert diff.any() and not diff[:, :x0].any() and not diff[:y0].any()


def test_render_accepts_face_objects_and_empty_lists():
    img = skin_image()

    @dataclasses.dataclass
    class FaceLike:
        landmarks: np.ndarray

    pts = synthetic_face()
    look = full_look()
    assert np.array_equal(render(img, [FaceLike(pts)], look), render(img, [pts], look))
    assert np.array_equal(render(img, [], look), img)
    assert np.array_equal(render(img, [pts], None), img)
    with pytest.raises(ValueError, match="uint8"):
        render(img.astype(np.float32), [pts], look)


def test_intensity_zero_is_bit_identical():
    img = skin_image()
    pts = synthetic_face(mouth_open=0.2)
    look = full_look()
    assert np.array_equal(render(img, [pts], dataclasses.replace(look, intensity=0.0)), img)
    assert np.array_equal(render(img, [pts], look_with_overrides(look, intensity=0.0)), img)
    zeroed = Look(**{k: dataclasses.replace(p, intensity=0.0) for k, p in look.products()})
    assert np.array_equal(render(img, [pts], zeroed), img)
    # Intensity is monotone: more intensity, more change.
    d = [np.abs(render(img, [pts], look_with_overrides(look, intensity=t)).astype(int) - img).sum()
         for t in (0.25, 0.5, 1.0)]
    assert 0 < d[0] < d[1] < d[2]


def test_lipstick_colours_lips_and_keeps_shading():
    img = skin_image()
    pts = synthetic_face(mouth_open=0.15)
    face = M.FaceShape(pts, img.shape)
    # Lips with a lightness gradient (lower lip brighter), a bit redder than the skin.
    lips = fill(img.shape, face.lips_outer) & ~fill(img.shape, face.lips_inner)
    ys = np.arange(img.shape[0])[:, None].repeat(img.shape[1], 1)
    img[lips] = np.stack([90 + (ys[lips] - ys[lips].min()), 90 + (ys[lips] - ys[lips].min()),
                          170 + 0 * ys[lips]], -1).clip(0, 255)
    for finish in FINISHES:
        look = Look(lips=Product("#b3001b", 1.0, finish=finish))
        out = render(img, [pts], look)
        m = M.lips_mask(face)
        core = m.data > 0.95
        before = bgr_to_lab(img[m.slices][core])
        after = bgr_to_lab(out[m.slices][core])
        target = hex_to_lab("#b3001b")
        d_before = np.hypot(*(before[:, 1:].mean(0) - target[1:]))
        d_after = np.hypot(*(after[:, 1:].mean(0) - target[1:]))
        assert d_after < 0.5 * d_before, finish
        # Shading survives: lightness still correlates with the original.
        r = np.corrcoef(before[:, 0], after[:, 0])[0, 1]
        assert r > 0.8, (finish, r)
    gloss = render(img, [pts], Look(lips=Product("#b3001b", 1.0, finish="gloss")))
    matte = render(img, [pts], Look(lips=Product("#b3001b", 1.0, finish="matte")))
    m = M.lips_mask(face)
    lg = lab_stats(gloss[m.slices], (m.data > 0.95).astype(np.float32))
    lm = lab_stats(matte[m.slices], (m.data > 0.95).astype(np.float32))
    assert lg[1] > lm[1], "gloss keeps more highlight contrast than matte"


# ------------------------------------------------------------- looks and arguments

def test_presets_load():
    assert set(available_looks()) >= {"natural", "bold", "evening"}
    for name in available_looks():
        look = load_look(name)
        assert look.name == name and look.description
        assert len(look.products()) >= 5
        assert look_from_dict(look_to_dict(look)) == look
        for kind, product in look.products():
            assert kind in PRODUCT_KINDS and 0 < product.intensity <= 1


def test_unknown_look_lists_choices():
    with pytest.raises(ValueError) as e:
        load_look("gothic")
    msg = str(e.value)
    assert "gothic" in msg and all(n in msg for n in ("natural", "bold", "evening"))


@pytest.mark.parametrize("bad", ["red", "#12345", "#ggg", ""])
def test_bad_colours_raise_with_accepted_formats(bad):
    with pytest.raises(ValueError, match="#rrggbb"):
        Product(bad)
    with pytest.raises(ValueError, match="#rrggbb"):
        look_with_overrides(load_look("natural"), lip_color=bad)


def test_bad_product_values_raise():
    with pytest.raises(ValueError, match="matte, gloss"):
        Product("#abc", finish="satin")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Product("#abc", intensity=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        look_with_overrides(load_look("bold"), intensity=-0.1)
    with pytest.raises(ValueError, match="matte, gloss"):
        look_with_overrides(load_look("bold"), lip_finish="satin")
    with pytest.raises(ValueError, match="unknown product"):
        look_from_dict({"products": {"mascara": {"color": "#000"}}})
    with pytest.raises(ValueError, match="unknown field"):
        look_from_dict({"products": {"lips": {"color": "#000", "shine": 1}}})


def test_overrides():
    look = load_look("natural")
    new = look_with_overrides(look, lip_color="#abc", lip_finish="matte", intensity=0.5,
                              eyeshadow_color="123456", blush_color="#f0a")
    assert new.lips.color == "#abc" and new.lips.finish == "matte"
    assert new.lips.intensity == look.lips.intensity and new.intensity == 0.5
    assert new.eyeshadow.color == "123456" and new.blush.color == "#f0a"
    assert look.lips.color != "#abc", "the original look is unchanged"
    bare = look_with_overrides(Look(), lip_color="#b3001b")
    assert bare.lips is not None and bare.lips.color == "#b3001b"


def parser():
    p = argparse.ArgumentParser()
    add_look_arguments(p)
    return p


def test_command_line_arguments():
    assert look_from_args(parser().parse_args([])) == load_look("natural")
    args = parser().parse_args(["--look", "bold", "--lip-color", "#abc", "--lip-finish",
                                "gloss", "--intensity", "0.4", "--eyeshadow-color", "#123",
                                "--blush-color", "f0a0a0"])
    look = look_from_args(args)
    assert look.name == "bold" and look.lips.color == "#abc" and look.lips.finish == "gloss"
    assert look.intensity == 0.4 and look.eyeshadow.color == "#123"
    assert look.blush.color == "f0a0a0"
    assert look_from_args(parser().parse_args(["--no-makeup", "--look", "bold"])) is None
    for argv in (["--look", "gothic"], ["--lip-color", "red"], ["--intensity", "2"],
                 ["--lip-finish", "satin"]):
        with pytest.raises(SystemExit):
            parser().parse_args(argv)
    # A namespace built by hand is validated too.
    with pytest.raises(ValueError, match="#rrggbb"):
        look_from_args(argparse.Namespace(look="natural", lip_color="red"))
    with pytest.raises(ValueError, match="natural"):
        look_from_args(argparse.Namespace(look="gothic"))


# ------------------------------------------------------------------------ real faces

@needs_data
@pytest.mark.parametrize("name", REAL_FACES)
def test_real_face_masks_and_render(name):
    img, pts = real_face(name)
    iod = M.face_frame(pts).iod
    face = M.FaceShape(pts, img.shape)
    face_region = fill(img.shape, face.polygon, dilate_px=0.05 * iod)
    for kind, m in all_masks(pts, img.shape).items():
        full = m.to_frame(img.shape)
        assert full.max() > 0.5, kind
        assert full[~face_region].max(initial=0.0) == 0.0, f"{kind} leaks outside the face"
    # Lipstick covers the lips away from their edges, not the open mouth.
    lips = M.lips_mask(face).to_frame(img.shape)
    edge = 2 * M.FEATHER["lips"] * iod + 1
    body = fill(img.shape, face.lips_outer, erode_px=edge) & ~fill(
        img.shape, face.lips_inner, dilate_px=edge)
    assert lips[body].mean() > 0.8
    mouth = fill(img.shape, face.lips_inner, erode_px=edge)
    if name == OPEN_MOUTH:
        assert mouth.sum() > 200
    if mouth.any():
        assert lips[mouth].mean() < 0.02
    for look_name in available_looks():
        look = load_look(look_name)
        out = render(img, [pts], look)
        union = union_of_masks(pts, img.shape, look)
        changed = np.any(out != img, axis=2)
        assert not changed[union == 0].any(), look_name
        assert changed[union > 0.5].mean() > 0.5, look_name
        assert np.array_equal(out, render(img, [pts], look)), "not deterministic"
        # Makeup, not paint: the lips' lightness detail survives.
        core = (M.lips_mask(face).data > 0.95)
        if core.sum() > 50:
            la = bgr_to_lab(img[M.lips_mask(face).slices][core])[:, 0]
            lb = bgr_to_lab(out[M.lips_mask(face).slices][core])[:, 0]
            assert np.corrcoef(la, lb)[0, 1] > 0.8, look_name


def test_floor_mask_is_the_boolean_floor():
    from tracker.raster import MASK_FLOOR, floor_mask
    rng = np.random.default_rng(3)
    data = rng.uniform(-0.01, 0.02, (37, 53)).astype(np.float32)
    data[0, :3] = [MASK_FLOOR, np.nextafter(np.float32(MASK_FLOOR), np.float32(0)), -0.0]
    want = data.copy()
    want[want < MASK_FLOOR] = 0.0
    got = floor_mask(data)
    assert got is data and np.array_equal(got, want)


def test_the_side_by_side_benchmark_runs_two_checkouts():
    # tools.bench.makeup_versions imports each checkout's packages from its folder; the same
    # checkout twice must give two timings and their ratio.
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "tools.bench.makeup_versions", f"a={root}",
                          f"b={root}", "--runs", "3", "--look", "natural"],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "natural" in run.stdout and "b/a " in run.stdout, run.stdout
    run = subprocess.run([sys.executable, "-m", "tools.bench.makeup_versions", f"a={root}",
                          f"b={root}", "--runs", "2", "--steps", "--look", "bold"],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "lips blend" in run.stdout and "sum" in run.stdout, run.stdout


def test_face_coverage_is_the_polygon_filled_at_full_resolution():
    # face_coverage shares its fill with the skin terms (rasterised once per face): it must
    # still be the anti-aliased polygon at full resolution, whichever is asked for first.
    pts = np.array(R.MEAN_SHAPE) * 97.0 + [160.3, 141.7]
    for skin_first in (False, True):
        face = M.FaceShape(pts, (300, 330, 3))
        if skin_first:
            M.skin_mask(face)
        cov = M.face_coverage(face)
        x0, y0, x1, y1 = face.roi
        want = np.zeros((y1 - y0, x1 - x0), np.uint8)
        poly = np.round((face.polygon - [x0, y0]) * 16).astype(np.int32)
        cv2.fillPoly(want, [poly], 255, cv2.LINE_AA, 4)
        assert (cov.x0, cov.y0) == (x0, y0)
        np.testing.assert_array_equal(cov.data, want.astype(np.float32) * np.float32(1 / 255))


@pytest.mark.parametrize("shape", [(1, 1), (9, 14), (45, 91)])
def test_blush_ovals_kernel_matches_reference(shape):
    # Odd grids, one oval partly off the grid, one centred, long axes turned both ways.
    h, w = shape
    gx = (np.arange(w, dtype=np.float32) * 2 + np.float32(100.5))
    gy = (np.arange(h, dtype=np.float32) * 2 + np.float32(40.5))
    ovals = np.array([[100.0, 30.0, 0.94, 0.34, 26.1, 16.7],
                      [100.0 + w, 40.0 + h, 0.94, -0.34, 13.0, 8.3]], np.float32)
    got, want = M._blush_ovals_nb(gx, gy, ovals), M.blush_ovals_reference(gx, gy, ovals)
    assert got.dtype == want.dtype == np.float32 and got.shape == shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert got.max() > 0.0
