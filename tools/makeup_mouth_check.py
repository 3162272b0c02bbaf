"""How much of an open mouth's inside (teeth, tongue, cavity) each look changes, on held-out faces.

USAGE
    python -m tools.makeup_mouth_check [--data ../shared/data/300w] [--perturb 2] [--seed 0]

Takes the validation faces of the fixed split (`tools.data.split_pairs(..., 0.1, seed=0)`),
renders every preset look with the true landmarks (and, with --perturb P, again with every
landmark moved by a random offset of length P pixels), and reports for the faces whose
mouth is open:

- inside: the fraction of the inner-lip polygon's pixels (straight polygon through the true
  points 60-67, pixel centres) that the look changed at all (any channel), and the fraction
  changed visibly (CIE76 colour difference > 3). Annotated polygons often take in a strip
  of lip, so also:
- teeth/cavity: the fraction changed visibly of the inside pixels that plainly are not lip,
  by a fixed rule independent of the renderer's: chroma (C*ab) under half the lip ring's
  median, or lightness under half of it;
- and for every face, open or closed, `lips`: the fraction of the lip ring (outer minus inner
  polygon, eroded by 2 px so only clear lip pixels count) that the look changed visibly, to
  show that the lip colour still fills the lips.

A mouth is open when its inner polygon holds at least `--min-area` pixel centres. The images
are 300-W data (research use only); nothing is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from tools import data as D
from tracker import regions as R
from tracker.colors import bgr_to_lab
from tracker.makeup import available_looks, load_look, render

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "300w"
VISIBLE_DELTA_E = 3.0


def polygon_mask(shape, points: np.ndarray) -> np.ndarray:
    """bool (H, W): pixel centres strictly inside the straight polygon through points (N, 2).

    (cv2.fillPoly would also count the pixels its outline passes through: a closed mouth,
    whose inner polygon has no area, would cover a line of pixels.)
    """
    m = np.zeros(shape[:2], bool)
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
    x1, y1 = min(x1, shape[1]), min(y1, shape[0])
    contour = points.astype(np.float32).reshape(-1, 1, 2)
    for y in range(y0, y1):
        for x in range(x0, x1):
            m[y, x] = cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0
    return m


def face_regions(shape, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inside, lip_ring) bool (H, W) masks of one face from its true landmarks."""
    inside = polygon_mask(shape, pts[list(R.LIPS_INNER)])
    outer = polygon_mask(shape, pts[list(R.LIPS_OUTER)])
    ring = (outer & ~inside).astype(np.uint8)
    ring = cv2.erode(ring, np.ones((5, 5), np.uint8)).astype(bool)
    return inside, ring


def not_lip(image: np.ndarray, inside: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """bool (H, W): the pixels of `inside` whose chroma or lightness is under half the
    lip ring's median (teeth, the dark cavity)."""
    out = np.zeros(inside.shape, bool)
    if not ring.any() or not inside.any():
        return out
    lab_ring = bgr_to_lab(image[ring][None])[0]
    lab_in = bgr_to_lab(image[inside][None])[0]
    c_ring = np.median(np.hypot(lab_ring[:, 1], lab_ring[:, 2]))
    l_ring = np.median(lab_ring[:, 0])
    chroma = np.hypot(lab_in[:, 1], lab_in[:, 2])
    out[inside] = (chroma < 0.5 * c_ring) | (lab_in[:, 0] < 0.5 * l_ring)
    return out


def changed(before: np.ndarray, after: np.ndarray, where: np.ndarray) -> tuple[float, float]:
    """(fraction changed at all, fraction with CIE76 delta E > 3) of the pixels `where`."""
    n = int(where.sum())
    if n == 0:
        return 0.0, 0.0
    a, b = before[where], after[where]
    anyc = np.any(a != b, axis=-1)
    de = np.linalg.norm(bgr_to_lab(a[None]) - bgr_to_lab(b[None]), axis=-1)[0]
    return float(anyc.mean()), float((de > VISIBLE_DELTA_E).mean())


def perturbed(pts: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """pts (68, 2) with every point moved by `radius` pixels in a random direction."""
    ang = rng.uniform(0.0, 2.0 * np.pi, len(pts))
    return (pts + radius * np.stack([np.cos(ang), np.sin(ang)], 1)).astype(np.float32)


def measure(pairs, looks, perturb: float, seed: int, min_area: int) -> dict:
    """Per look and landmark set: lists of per-face fractions (see the module docstring)."""
    rng = np.random.default_rng(seed)
    sets = ["true"] + ([f"+-{perturb:g} px"] if perturb > 0 else [])
    res = {(lk.name, s): {"inside": [], "inside_visible": [], "teeth": [], "lips": [],
                          "names": [], "teeth_names": []}
           for lk in looks for s in sets}
    for img_path, pts_path in pairs:
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"{img_path}: unreadable image")
        pts = D.read_pts(pts_path)
        inside, ring = face_regions(img.shape, pts)
        is_open = int(inside.sum()) >= min_area
        teeth = not_lip(img, inside, ring)
        variants = {"true": pts}
        if perturb > 0:
            variants[sets[1]] = perturbed(pts, perturb, rng)
        for lk in looks:
            for s, lm in variants.items():
                out = render(img, [lm], lk)
                r = res[lk.name, s]
                r["lips"].append(changed(img, out, ring)[1])
                if is_open:
                    anyc, vis = changed(img, out, inside)
                    r["inside"].append(anyc)
                    r["inside_visible"].append(vis)
                    if teeth.sum() >= 5:
                        r["teeth"].append(changed(img, out, teeth)[1])
                        r["teeth_names"].append(img_path.stem)
                    r["names"].append(img_path.stem)
    return res


def report(res: dict, n_faces: int) -> str:
    """The results as a Markdown table."""
    lines = ["| look | landmarks | open mouths | inside changed: mean | max (face) | faces > 5% "
             "| inside visibly changed: mean | max | teeth/cavity visibly changed: faces | mean "
             f"| max | faces > 5% | lip ring visibly changed (all {n_faces} faces): mean |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (look, s), r in res.items():
        ins, vis = np.array(r["inside"]), np.array(r["inside_visible"])
        if len(ins):
            k = int(ins.argmax())
            worst = f"{ins[k]:.1%} ({r['names'][k]})"
            row = (f"{len(ins)} | {ins.mean():.2%} | {worst} | {(ins > 0.05).sum()} | "
                   f"{vis.mean():.2%} | {vis.max():.1%}")
        else:
            row = "0 | - | - | - | - | -"
        t = np.array(r["teeth"])
        if len(t):
            worst = f"{t.max():.1%} ({r['teeth_names'][int(t.argmax())]})"
            row += f" | {len(t)} | {t.mean():.2%} | {worst} | {(t > 0.05).sum()}"
        else:
            row += " | 0 | - | - | -"
        lines.append(f"| {look} | {s} | {row} | {np.mean(r['lips']):.1%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA), help="300-W root (default: %(default)s)")
    ap.add_argument("--perturb", type=float, default=2.0,
                    help="also render with landmarks moved by this many pixels (0: off)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the landmark offsets")
    ap.add_argument("--min-area", type=int, default=20,
                    help="pixels inside the inner lips for a mouth to count as open")
    args = ap.parse_args(argv)
    try:
        pairs = D.split_pairs(D.find_pairs(args.data), 0.1, seed=0)[1]
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    if not pairs:
        print(f"{args.data}: no image + .pts pairs found", file=sys.stderr)
        return 2
    looks = [load_look(n) for n in available_looks()]
    res = measure(pairs, looks, args.perturb, args.seed, args.min_area)
    print(report(res, len(pairs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
