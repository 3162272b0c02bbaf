"""Save the makeup renders of the sample frame, or compare them with a saved snapshot.

USAGE
    python -m tools.makeup_snapshot save FILE.npz [--frame 10]
    python -m tools.makeup_snapshot compare FILE.npz

`save` finds the face in one frame of the bundled sample clip (shipped detector and
landmark model), then stores the frame, its landmarks and the render of every preset look
(each also with the other lip finish). `compare` renders the stored frame with the stored
landmarks again and reports, per render, whether it is bit-identical to the saved one, so
a refactor of the renderer can be checked for "no behaviour change" on its own (the
landmark model is not run again). Exit status 1 when a render differs.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from tracker.makeup import FINISHES, available_looks, load_look, look_with_overrides, render


def looks():
    """(key, Look) for every preset look, as designed and with the other lip finish."""
    out = []
    for name in available_looks():
        look = load_look(name)
        out.append((name, look))
        if look.lips is not None:
            other = next(f for f in FINISHES if f != look.lips.finish)
            out.append((f"{name}+{other}", look_with_overrides(look, lip_finish=other)))
    return out


def renders(frame: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
    """{key: uint8 render} of every look in `looks()` on one face."""
    return {key: render(frame, [points], look) for key, look in looks()}


def sample_face(index: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame `index` of the sample clip and the landmarks (68, 2) of its face."""
    from tools.make_gallery import read_frame
    from tracker.detection import DEFAULT_DETECTOR, DETECTORS
    from tracker.landmarks import DEFAULT_WEIGHTS, Landmarker
    from tracker.tracking import Tracker
    from tracker.video import SAMPLE

    frame = read_frame(SAMPLE, index)
    tracker = Tracker(Landmarker(DEFAULT_WEIGHTS), DETECTORS[DEFAULT_DETECTOR](),
                      static_image_mode=True)
    faces = tracker.process(frame)
    if not faces:
        raise SystemExit(f"no face found in frame {index} of {SAMPLE}")
    return frame, np.asarray(faces[0].landmarks, np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("save", "compare"))
    ap.add_argument("file")
    ap.add_argument("--frame", type=int, default=10, help="sample clip frame (save only)")
    args = ap.parse_args(argv)
    if args.action == "save":
        frame, points = sample_face(args.frame)
        np.savez_compressed(args.file, frame=frame, points=points,
                            **{f"render/{k}": v for k, v in renders(frame, points).items()})
        print(f"saved {args.file}: {len(looks())} renders")
        return 0
    try:
        snap = np.load(args.file)
    except OSError as e:
        print(f"{args.file}: cannot read snapshot ({e})", file=sys.stderr)
        return 2
    now = renders(snap["frame"], snap["points"])
    bad = 0
    for key, img in now.items():
        saved = snap.get(f"render/{key}")
        if saved is None:
            print(f"{key}: not in the snapshot")
            bad += 1
            continue
        diff = np.abs(img.astype(np.int16) - saved.astype(np.int16))
        same = not diff.any()
        bad += not same
        print(f"{key}: " + ("bit-identical" if same else
                             f"DIFFERS on {int(diff.any(-1).sum())} pixels (max {diff.max()})"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
