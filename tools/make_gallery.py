"""Render the README's before/after gallery from the public-domain sample clip.

    python -m tools.make_gallery [--weights weights/demo.h5] [--frame 10]

Takes one frame of tracker/data/sample.mp4 (NASA astronaut photo, public domain),
finds the face with the shipped detector and landmark model, and writes
tools/gallery/looks.jpg: landmarks | before | each preset look, cropped around the face,
and tools/gallery/lighting.jpg: the same frame dimmed to 0.3x and under a warm cast (in
linear light, `tools.makeup_realism.expose`), each before | after the bold look.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from tracker.detection import DEFAULT_DETECTOR, DETECTORS
from tracker.draw import DrawSpec, draw_landmarks
from tracker.landmarks import DEFAULT_WEIGHTS, Landmarker
from tracker.makeup import available_looks, load_look, render
from tracker.sources import open_source
from tracker.tracking import Tracker
from tracker.video import SAMPLE
from tools.makeup_realism import CASTS, expose

OUT = Path(__file__).resolve().parent / "gallery"


def read_frame(path, index):
    with open_source(str(path)) as src:
        for i, frame in enumerate(src):
            if i == index:
                return frame
    raise ValueError(f"{path} has fewer than {index + 1} frames")


def face_crop(image, points, size=256, margin=1.7):
    c = points.mean(axis=0)
    half = margin * np.ptp(points, axis=0).max() / 2
    x0, y0 = int(max(c[0] - half, 0)), int(max(c[1] - half, 0))
    x1, y1 = int(min(c[0] + half, image.shape[1])), int(min(c[1] + half, image.shape[0]))
    return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def write(path, tiles):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.hstack(tiles), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--frame", type=int, default=10)
    ap.add_argument("--out", default=str(OUT / "looks.jpg"))
    ap.add_argument("--lighting-out", default=str(OUT / "lighting.jpg"))
    args = ap.parse_args(argv)
    frame = read_frame(SAMPLE, args.frame)
    tracker = Tracker(Landmarker(args.weights), DETECTORS[DEFAULT_DETECTOR](), static_image_mode=True)
    faces = tracker.process(frame)
    if not faces:
        print(f"no face found in frame {args.frame} of {SAMPLE}", file=sys.stderr)
        return 1
    pts = faces[0].landmarks
    overlay = frame.copy()
    draw_landmarks(overlay, faces, DrawSpec())
    tiles = [("landmarks", overlay), ("before", frame)]
    tiles += [(name, render(frame, faces, load_look(name))) for name in available_looks()]
    row = []
    for name, img in tiles:
        t = face_crop(img, pts)
        cv2.putText(t, name, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        row.append(t)
    write(args.out, row)
    bold = load_look("bold")
    row = []
    for name, gains in (("dim 0.3x", 0.3), ("warm", CASTS["warm"])):
        lit = expose(frame, gains)
        for label, img in ((f"{name}: before", lit), (f"{name}: bold", render(lit, faces, bold))):
            t = face_crop(img, pts)
            cv2.putText(t, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                        cv2.LINE_AA)
            row.append(t)
    write(args.lighting_out, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
