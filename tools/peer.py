"""A peer tracker for side-by-side timing: MediaPipe's legacy face mesh (tracking mode) in
another interpreter (its own venv and numpy), fed the same frames over a pipe.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tools.tflite_macs import tflite_macs


#: Runs in the peer's interpreter (a venv with mediapipe 0.10.14 and numpy < 2). Reads
#: sequences from stdin: a JSON line {"frames": T, "height": H, "width": W}, then T raw
#: uint8 BGR frames; a fresh FaceMesh in tracking mode per sequence (as `tracker.reset()`
#: for ours); answers one JSON line per sequence: per-frame seconds of cvtColor to RGB +
#: FaceMesh.process, and whether a face came out. An empty line ends it.
PEER_WORKER = r"""
import json, os, sys, time
import cv2, numpy as np
import mediapipe as mp
fm = mp.solutions.face_mesh
model = os.path.join(os.path.dirname(mp.__file__), "modules", "face_landmark", "face_landmark.tflite")
print(json.dumps({"ready": mp.__version__, "landmark_model": model}), flush=True)
src = sys.stdin.buffer
while True:
    line = src.readline()
    if not line.strip():
        break
    head = json.loads(line)
    n, h, w = head["frames"], head["height"], head["width"]
    secs, found, cpu = [], [], time.process_time()
    with fm.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                     min_detection_confidence=0.5, min_tracking_confidence=0.5) as mesh:
        for _ in range(n):
            frame = np.frombuffer(src.read(h * w * 3), np.uint8).reshape(h, w, 3)
            t = time.perf_counter()
            res = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            secs.append(time.perf_counter() - t)
            found.append(bool(res.multi_face_landmarks))
    print(json.dumps({"seconds": secs, "found": found, "cpu_s": time.process_time() - cpu}), flush=True)
"""


class PeerTracker:
    """MediaPipe's face mesh (tracking mode) in another interpreter, fed the same frames.

    python : the peer venv's interpreter (its own numpy; frames go over a pipe, so
    the transfer is not timed). `run(frames)` -> (seconds per frame, face found per frame);
    `cpu_s` and `wall_s` add up the CPU seconds (all its threads) and frame seconds so far;
    `model_macs` is the multiply-adds of the landmark model it runs each tracking frame
    (`tools.tflite_macs`; None where its file is not found).
    """

    def __init__(self, python):
        import subprocess

        if not Path(python).is_file():
            raise FileNotFoundError(f"{python}: no such interpreter (--mediapipe)")
        self.proc = subprocess.Popen([str(python), "-c", PEER_WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = json.loads(self._answer())
        self.version = ready["ready"]
        model = Path(ready.get("landmark_model", ""))
        self.model_macs = tflite_macs(model).macs if model.is_file() else None
        self.cpu_s = self.wall_s = 0.0

    def _answer(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the MediaPipe peer stopped:\n{err}")
        return line.decode()

    def run(self, frames: list) -> tuple[np.ndarray, np.ndarray]:
        h, w = frames[0].shape[:2]
        self.proc.stdin.write((json.dumps({"frames": len(frames), "height": h, "width": w}) + "\n").encode())
        for frame in frames:
            self.proc.stdin.write(np.ascontiguousarray(frame, np.uint8).tobytes())
        self.proc.stdin.flush()
        res = json.loads(self._answer())
        self.cpu_s += res["cpu_s"]
        self.wall_s += sum(res["seconds"])
        return np.asarray(res["seconds"], float), np.asarray(res["found"], bool)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def peer_tracking_seconds(seconds: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per-frame seconds of the peer's tracking frames: a face out, and one on the frame
    before (so the frame did not start with a detection)."""
    tracking = found.copy()
    tracking[0] = False
    tracking[1:] &= found[:-1]
    return seconds[tracking]
