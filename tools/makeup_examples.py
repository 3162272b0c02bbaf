"""Render before/after sheets of the preset looks on a few 300-W faces (for eyeballing).

USAGE
    python -m tools.makeup_examples [--out /tmp/makeup_examples] [--faces NAME ...]

Reads NAME.jpg + NAME.pts from ../shared/data/300w/helen/trainset (beside the repository)
and writes one PNG per face: the original, then each preset look, side by side and
upscaled 2x, plus a close-up of eyes and lips. The images are 300-W data (research use
only): write them outside the repository, never commit them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker.makeup import available_looks, load_look, render  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "300w" / "helen" / "trainset"
FACES = ("103236168_1", "1238488784_1", "1265948983_1")


def read_pts(path: Path) -> np.ndarray:
    """300-W .pts -> float32 (68, 2), 0-based pixel centres."""
    lines = [s.strip() for s in path.read_text().splitlines()]
    start = lines.index("{") + 1
    pts = np.array([[float(v) for v in s.split()] for s in lines[start:start + 68]])
    return (pts - 1.0).astype(np.float32)


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                cv2.LINE_AA)
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/makeup_examples")
    ap.add_argument("--faces", nargs="+", default=list(FACES))
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    looks = [load_look(n) for n in available_looks()]
    for name in args.faces:
        img = cv2.imread(str(Path(args.data) / f"{name}.jpg"))
        if img is None:
            print(f"cannot read {name}.jpg in {args.data}", file=sys.stderr)
            return 1
        pts = read_pts(Path(args.data) / f"{name}.pts")
        tiles = [("before", img)] + [(lk.name, render(img, [pts], lk)) for lk in looks]
        big = [label(cv2.resize(t, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), n)
               for n, t in tiles]
        cv2.imwrite(str(out_dir / f"{name}_looks.png"), np.hstack(big))
        # Close-up: eyes+brows band and mouth, 4x.
        x0, x1 = int(pts[:, 0].min()), int(pts[:, 0].max()) + 1
        ey0 = int(pts[17:27, 1].min()) - 10
        ey1 = int(pts[36:48, 1].max()) + 12
        my0, my1 = int(pts[48:60, 1].min()) - 8, int(pts[48:60, 1].max()) + 8
        mx0, mx1 = int(pts[48:60, 0].min()) - 10, int(pts[48:60, 0].max()) + 10
        rows = []
        for n, t in tiles:
            eyes = t[max(ey0, 0):ey1, max(x0, 0):x1]
            mouth = t[max(my0, 0):my1, max(mx0, 0):mx1]
            s = 3
            eyes = cv2.resize(eyes, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
            mouth = cv2.resize(mouth, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
            h = max(eyes.shape[0], mouth.shape[0])
            pad = lambda a: cv2.copyMakeBorder(a, 0, h - a.shape[0], 0, 4, cv2.BORDER_CONSTANT)
            rows.append(label(np.hstack([pad(eyes), pad(mouth)]), n))
        w = max(r.shape[1] for r in rows)
        rows = [cv2.copyMakeBorder(r, 0, 4, 0, w - r.shape[1], cv2.BORDER_CONSTANT) for r in rows]
        cv2.imwrite(str(out_dir / f"{name}_closeup.png"), np.vstack(rows))
    print(f"wrote {len(args.faces) * 2} images to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
