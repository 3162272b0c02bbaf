"""Measure how well the makeup belongs to the photo (issue 20), on faces with true landmarks.

USAGE
    python -m tools.makeup_realism [--data ../shared/data/300w] [--limit 40]
    python -m tools.makeup_realism --folder my_faces/          # any folder of image + .pts

By default the faces are the validation split of 300-W (`tools.landmarks.data.split_pairs(pairs, 0.1,
seed=0)`), never a test set; each is cropped around its face and scaled down so its
inter-ocular distance is at most --max-iod pixels. The masks come from the true landmarks.
Every product of the "bold" look is measured alone (foundation with a real shade, `SHADES`,
since "auto" has no colour to check), at the look's intensity unless said otherwise:

- exposure: darken or brighten the photo by k in linear light (uint8 again), render, and
  compare with the render of the original exposed the same way. A renderer whose makeup
  belongs to the scene gives the same colour both ways. error = CIELAB distance between the
  two renders' mean colours under the product's mask; change = distance between the exposed
  render's mean colour and the exposed photo's (the makeup's own change). Printed: the
  error / change of the sums over faces, and the worst face's.
- cast: the same with a warm and a cool white-balance cast (per-channel gains in linear light).
- shade: at full intensity, on the faces (of --shade-limit, default all) that are neutrally
  lit and normally exposed (mean skin
  L in 60-75, skin a, b within `NEUTRAL_AB` of typical skin `TYPICAL_SKIN_AB`), the mean
  colour against the product's Lab (where the mask is at least 0.95 of its peak: the layer is opaque): lightness, chroma and hue
  (degrees; for products with chroma >= 10) differences; worst and median face. Occluders
  (`occluders`: lashes, hairs, lines, more than `OCCLUDER_DL` darker than their surroundings
  in the photo) are left out: the renderer keeps them on top of the product as texture, and
  a swatch is judged on the product, not on the lashes in front of it (on a small lid they
  were half the measured pixels).
- texture: Laplacian energy (mean square of the 3x3 Laplacian) of L inside the lips
  (mask >= 0.99, eroded by a pixel), made-up / original, for the lipstick alone.
- outside: pixels changed outside the face (`tracker.masks.face_coverage` is 0) by the full
  bold look, summed over faces; mouth: pixels changed where the mouth guard is 0 (the
  mouth's inside: teeth, tongue, cavity).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np

from tools.landmarks.data import find_pairs, read_pts, split_pairs
from tracker.blend import bgr_to_lab_planes
from tracker.colors import SRGB_TO_LINEAR_LUT, bgr_to_lab, hex_to_lab, linear_to_srgb
from tracker.makeup import Look, Product, load_look, product_mask, render
from tracker.masks import FaceShape, face_coverage
from tracker.mouth import mouth_guard

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "300w"
EXPOSURES = (0.3, 0.5, 0.7, 1.5)
# Per-channel gains in linear light, B, G, R (a tungsten-ish warm cast, a shade-ish cool one).
CASTS = {"warm": (0.7, 0.95, 1.25), "cool": (1.25, 1.0, 0.8)}
SHADES = {"foundation": "#c99a7c"}
TYPICAL_SKIN_AB = (13.0, 15.5)  # median skin a, b of 300-W validation faces with skin L 60-75
NEUTRAL_AB = 5.0
OCCLUDER_DL = 8.0  # CIELAB L below the local mean (Gaussian, OCCLUDER_SIGMA px)
OCCLUDER_SIGMA = 2.0
SKIN_L = (60.0, 75.0)


def load_faces(folder=None, data=DEFAULT_DATA, limit=40, max_iod=140.0):
    """[(name, uint8 BGR crop, float64 (68, 2) landmarks)] of a folder or 300-W's validation split."""
    pairs = find_pairs(folder) if folder else split_pairs(find_pairs(data), 0.1, seed=0)[1]
    faces = []
    for img_path, pts_path in pairs[:limit] if limit else pairs:
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        pts = read_pts(pts_path).astype(np.float64)
        if img is None or pts.shape != (68, 2):
            continue
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.6 * (hi - lo).max()
        x0, y0 = (np.maximum(lo - pad, 0)).astype(int)
        x1, y1 = np.minimum(hi + pad, [img.shape[1] - 1, img.shape[0] - 1]).astype(int) + 1
        img, pts = img[y0:y1, x0:x1], pts - [x0, y0]
        iod = float(np.hypot(*(pts[45] - pts[36])))
        if iod > max_iod:
            s = max_iod / iod
            size = (max(int(round(img.shape[1] * s)), 1), max(int(round(img.shape[0] * s)), 1))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            pts = (pts + 0.5) * [size[0] / (x1 - x0), size[1] / (y1 - y0)] - 0.5
        faces.append((img_path.stem, np.ascontiguousarray(img), pts))
    return faces


def expose(img: np.ndarray, gains) -> np.ndarray:
    """uint8 BGR scaled per channel (B, G, R gains, or one number) in linear light."""
    lin = SRGB_TO_LINEAR_LUT[img] * np.asarray(gains, dtype=np.float64)
    return np.floor(255.0 * linear_to_srgb(lin) + 0.5).astype(np.uint8)


def single(kind: str, product: Product) -> Look:
    return Look(name=kind, **{kind: product})


def products(intensity=None):
    """(kind, Product) of the bold look, foundation given a shade; intensity overrides."""
    out = []
    for kind, p in load_look("bold").products():
        p = dataclasses.replace(p, color=SHADES.get(kind, p.color))
        if intensity is not None:
            p = dataclasses.replace(p, intensity=float(intensity))
        out.append((kind, p))
    return out


def weights(face: FaceShape, img: np.ndarray, kind: str, product: Product) -> np.ndarray:
    """The product's mask times the mouth guard, as a float32 (H, W) frame."""
    m = product_mask(face, img.shape, kind, product).to_frame(img.shape)
    guard = mouth_guard(face, bgr_to_lab_planes(img), 0, 0)
    if guard is not None:
        m[guard.slices] *= guard.data
    return m


def mean_lab(img: np.ndarray, w: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(w)
    lab = bgr_to_lab(img[ys, xs])
    wt = w[ys, xs].astype(np.float64)
    return (lab * wt[:, None]).sum(axis=0) / max(wt.sum(), 1e-9)


def consistency(faces, kind, product):
    """{condition: (sum error / sum change, worst face's ratio)} for one product."""
    look = single(kind, product)
    sums = {}
    for name, img, pts in faces:
        face = FaceShape(pts, img.shape)
        w = weights(face, img, kind, product)
        if w.sum() < 5:
            continue
        base = render(img, [pts], look)
        conds = [(f"x{k:g}", k) for k in EXPOSURES] + list(CASTS.items())
        for cname, gains in conds:
            x = expose(img, gains)
            ref = expose(base, gains)
            err = np.linalg.norm(mean_lab(render(x, [pts], look), w) - mean_lab(ref, w))
            change = np.linalg.norm(mean_lab(ref, w) - mean_lab(x, w))
            s = sums.setdefault(cname, [0.0, 0.0, 0.0])
            s[0] += err
            s[1] += change
            s[2] = max(s[2], err / max(change, 1e-6))
    return {c: (e / max(ch, 1e-9), worst) for c, (e, ch, worst) in sums.items()}


def skin_lab(face: FaceShape, img: np.ndarray) -> np.ndarray:
    w = product_mask(face, img.shape, "foundation", Product("auto")).to_frame(img.shape)
    return mean_lab(img, (w >= 0.5).astype(np.float32))


def neutral(face, img) -> bool:
    lab = skin_lab(face, img)
    return (SKIN_L[0] <= lab[0] <= SKIN_L[1]
            and np.hypot(lab[1] - TYPICAL_SKIN_AB[0], lab[2] - TYPICAL_SKIN_AB[1]) <= NEUTRAL_AB)


def lch(lab):
    return lab[0], float(np.hypot(lab[1], lab[2])), float(np.degrees(np.arctan2(lab[2], lab[1])))


def occluders(img: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels of a uint8 BGR photo more than OCCLUDER_DL darker in L than their
    Gaussian neighbourhood (sigma OCCLUDER_SIGMA px): lashes, hairs and lines, thin dark
    things in front of (or in) a surface rather than the surface itself."""
    lum = bgr_to_lab(img)[..., 0].astype(np.float32)
    return lum < cv2.GaussianBlur(lum, (0, 0), OCCLUDER_SIGMA) - OCCLUDER_DL


def shade_errors(faces, kind, product):
    """[(dL, dC, dH degrees or nan)] per neutral face, the product alone at full intensity."""
    look = single(kind, dataclasses.replace(product, intensity=1.0))
    target = lch(hex_to_lab(product.color).astype(np.float64))
    out = []
    for name, img, pts in faces:
        face = FaceShape(pts, img.shape)
        if not neutral(face, img):
            continue
        w = weights(face, img, kind, product)
        core = ((w >= 0.95 * w.max()) & ~occluders(img)).astype(np.float32)
        if core.sum() < 5:
            continue
        got = lch(mean_lab(render(img, [pts], look), core))
        dh = (got[2] - target[2] + 180.0) % 360.0 - 180.0 if target[1] >= 10.0 else float("nan")
        out.append((got[0] - target[0], got[1] - target[1], dh))
    return out


def laplacian_energy(lum: np.ndarray, inside: np.ndarray) -> float:
    lap = cv2.Laplacian(lum.astype(np.float32), cv2.CV_32F, ksize=1)
    return float(np.mean(lap[inside] ** 2))


def texture_kept(faces, product):
    """Per face: Laplacian energy of L inside the lips, made-up / original."""
    look = single("lips", product)
    out = []
    for name, img, pts in faces:
        face = FaceShape(pts, img.shape)
        w = weights(face, img, "lips", product)
        inside = cv2.erode((w >= 0.99).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if inside.sum() < 10:
            continue
        before = laplacian_energy(bgr_to_lab(img)[..., 0], inside)
        after = laplacian_energy(bgr_to_lab(render(img, [pts], look))[..., 0], inside)
        out.append(after / max(before, 1e-9))
    return out


def outside_and_mouth(faces):
    """(pixels changed outside the face, pixels changed inside the mouth) by the bold look."""
    look = load_look("bold")
    outside = mouth = 0
    for name, img, pts in faces:
        face = FaceShape(pts, img.shape)
        changed = np.any(render(img, [pts], look) != img, axis=2)
        cov = face_coverage(face).to_frame(img.shape)
        outside += int(np.count_nonzero(changed & (cov == 0)))
        guard = mouth_guard(face, bgr_to_lab_planes(img), 0, 0)
        if guard is not None:
            inside = np.zeros(img.shape[:2], bool)
            inside[guard.slices] = guard.data == 0
            mouth += int(np.count_nonzero(changed & inside))
    return outside, mouth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", help="a folder of images with .pts files (default: 300-W validation)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="300-W root (for the validation split)")
    ap.add_argument("--limit", type=int, default=40, help="at most this many faces (0: all)")
    ap.add_argument("--shade-limit", type=int, default=0,
                    help="faces searched for neutral ones for the shade figures (0: all)")
    ap.add_argument("--max-iod", type=float, default=140.0)
    args = ap.parse_args(argv)
    faces = load_faces(args.folder, args.data, args.limit, args.max_iod)
    if not faces:
        print("no faces with .pts files found", file=sys.stderr)
        return 1
    shade_faces = [(n, i, p) for n, i, p in
                   load_faces(args.folder, args.data, args.shade_limit, args.max_iod)
                   if neutral(FaceShape(p, i.shape), i)]
    print(f"{len(faces)} faces; {len(shade_faces)} neutrally lit, normally exposed ones "
          f"(of {args.shade_limit or 'all'}) for the shade")
    conds = [f"x{k:g}" for k in EXPOSURES] + list(CASTS)
    print("consistency, error / change (sum over faces; worst face in brackets):")
    print(f"  {'product':<11}" + "".join(f"{c:>14}" for c in conds))
    for kind, product in products():
        res = consistency(faces, kind, product)
        print(f"  {kind:<11}" + "".join(
            f"{res[c][0]:>7.2f} ({res[c][1]:4.2f})" if c in res else f"{'-':>14}" for c in conds))
    print("shade at full intensity on neutral faces (worst |dL|, |dC|, |dH| deg; median):")
    for kind, product in products():
        e = np.array(shade_errors(shade_faces, kind, product)).reshape(-1, 3)
        if not len(e):
            print(f"  {kind:<11} no neutral faces")
            continue
        a = np.abs(e)
        dh = a[:, 2][np.isfinite(a[:, 2])]
        hue = f"{dh.max():5.1f} ({np.median(dh):4.1f})" if len(dh) else "    -"
        print(f"  {kind:<11} dL {a[:, 0].max():5.1f} ({np.median(e[:, 0]):+5.1f})  "
              f"dC {a[:, 1].max():5.1f} ({np.median(e[:, 1]):+5.1f})  dH {hue}  [{len(e)} faces]")
    lips = dict(products())["lips"]
    t = texture_kept(faces, lips)
    print(f"lip texture kept: worst {min(t):.2f}, median {np.median(t):.2f} [{len(t)} faces]")
    outside, mouth = outside_and_mouth(faces)
    print(f"pixels changed outside the face: {outside}; inside the mouth: {mouth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
