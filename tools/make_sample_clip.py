"""Make tracker/data/sample.mp4: a short synthetic head-motion clip for demos and tests.

usage: python -m tools.make_sample_clip [-o tracker/data/sample.mp4]

The frames are scikit-image's astronaut photo (Eileen Collins, NASA, public
domain; skimage.data.astronaut()) moved under a keyframed camera: 640x480,
30 frames/s, 120 frames, codec mp4v. The motion, in order:

  frames   0-19  still (identical frames: jitter measurements)
  frames  20-61  smooth translation, zoom in and out, roll to +25 and -15 degrees
  frames  62-69  pan left until the face has left the frame
  frames  70-79  face entirely out of view (10 frames)
  frames  80-119 pan back in, mild roll and zoom, settle

Between keyframes the motion is eased (zero velocity at keyframes); outside the
still segment a small seeded hand-held shake is added. Deterministic. The
face's landmark box at frame 0 is near (256, 170)-(384, 300).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS, FRAMES = 640, 480, 30.0, 120
FACE_CENTRE = (222.0, 130.0)  # photo pixels: middle of the astronaut's landmark box (measured)
BACKGROUND = (70, 64, 60)  # BGR, outside the photo
SEED = 0
SHAKE_PX = 1.5

# frame, face centre x, y in the frame, scale, roll (degrees, positive = clockwise on screen)
KEYFRAMES = [
    (0, 320, 236, 1.5, 0.0),
    (19, 320, 236, 1.5, 0.0),
    (34, 370, 250, 1.9, 25.0),
    (50, 285, 255, 1.2, -15.0),
    (62, 250, 236, 1.4, 0.0),
    (72, -120, 236, 1.4, 0.0),
    (76, -120, 236, 1.4, 0.0),
    (92, 330, 246, 1.6, 10.0),
    (106, 300, 226, 1.7, -5.0),
    (119, 320, 236, 1.5, 0.0),
]
STILL = range(0, 20)


def camera(frame: int) -> tuple[float, float, float, float]:
    """(x, y, scale, roll_deg) at a frame: eased interpolation between keyframes."""
    for (f0, *a), (f1, *b) in zip(KEYFRAMES, KEYFRAMES[1:]):
        if f0 <= frame <= f1:
            t = (frame - f0) / (f1 - f0)
            w = (1 - math.cos(math.pi * t)) / 2
            return tuple(p + (q - p) * w for p, q in zip(a, b))
    raise ValueError(f"frame {frame} outside the keyframes")


def shake(rng: np.random.Generator) -> np.ndarray:
    """(FRAMES, 2) smooth hand-held offsets in pixels, zero on the still segment."""
    noise = rng.normal(size=(FRAMES + 8, 2))
    kernel = np.hanning(9)
    smooth = np.stack([np.convolve(noise[:, i], kernel / kernel.sum(), mode="valid") for i in range(2)], 1)
    smooth *= SHAKE_PX / smooth.std()
    smooth[list(STILL)] = 0.0
    return smooth[:FRAMES]


def render(photo: np.ndarray, x: float, y: float, scale: float, roll_deg: float) -> np.ndarray:
    """The photo placed so its face centre lands on (x, y), scaled and rolled."""
    a = math.radians(roll_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m = np.hstack([rot, (np.array([x, y]) - rot @ np.array(FACE_CENTRE))[:, None]])
    return cv2.warpAffine(photo, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=REPO / "tracker" / "data" / "sample.mp4")
    args = parser.parse_args(argv)

    import skimage.data  # tools only
    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    offsets = shake(np.random.default_rng(SEED))

    tmp = args.output.with_name(args.output.stem + ".tmp" + args.output.suffix)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        print(f"cannot open a video writer for {tmp}", file=sys.stderr)
        return 2
    try:
        for i in range(FRAMES):
            x, y, scale, roll = camera(i)
            writer.write(render(photo, x + offsets[i, 0], y + offsets[i, 1], scale, roll))
    finally:
        writer.release()

    cap = cv2.VideoCapture(str(tmp))
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (HEIGHT, WIDTH, 3), frame.shape
        count += 1
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    if count != FRAMES or abs(fps - FPS) > 1e-3:
        tmp.unlink()
        print(f"read back {count} frames at {fps} fps, expected {FRAMES} at {FPS}", file=sys.stderr)
        return 1
    tmp.replace(args.output)
    print(f"{args.output}: {FRAMES} frames, {WIDTH}x{HEIGHT}, {FPS:g} fps, "
          f"{args.output.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
