"""A real `tracker.web` server in a child process on loopback, and the frames a browser sends it.

`ServerProcess` starts `python -m tracker.web --port 0` and reads its address; `sample_frames` /
`sample_jpegs` are the bundled sample clip's frames (uint8 BGR / JPEG bytes); `split_frame_message`
reads the server's binary answer. The tests and `tools.bench.load_web` use them.
"""
from __future__ import annotations

import json
import re
import selectors
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tracker" / "data" / "sample.mp4"
ADDRESS_LINE = re.compile(r"serving on (https?)://([^\s/]+)")


def sample_frames(count: int, start: int = 0) -> list[np.ndarray]:
    """`count` uint8 BGR frames of the bundled sample clip from frame `start` (cycled)."""
    cap = cv2.VideoCapture(str(SAMPLE))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise RuntimeError(f"cannot read {SAMPLE}")
    return [frames[(start + i) % len(frames)] for i in range(count)]


def sample_jpegs(count: int, start: int = 0, quality: int = 80) -> list[bytes]:
    """The same frames as JPEG bytes, as a browser would send them."""
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
            for f in sample_frames(count, start)]


class ServerProcess:
    """`python -m tracker.web --port 0 ARGS` in a subprocess, as a context manager.

    url : "http://127.0.0.1:PORT" (https with --certfile), ws_url the same with ws/wss;
    rss_mb() : the server's resident memory now. Fails with the server's stderr when it
    does not print its address within `timeout` seconds.
    """

    def __init__(self, *args: str, timeout: float = 180.0):
        self.args = [sys.executable, "-m", "tracker.web", "--port", "0", *args]
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.url = self.ws_url = ""
        self.output: list[str] = []

    def __enter__(self) -> "ServerProcess":
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True)
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not self.url:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not sel.select(0):
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"server did not start: {' '.join(self.args)}\n{self.stderr()}")
                if sel.select(min(left, 1.0)):
                    line = self.proc.stdout.readline()
                    self.output.append(line)
                    m = ADDRESS_LINE.search(line)
                    if m:
                        self.url = f"{m.group(1)}://{m.group(2)}"
        self.ws_url = self.url.replace("http", "ws", 1) + "/ws"
        return self

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.proc.stdout.close()


def split_frame_message(message: bytes) -> tuple[dict, bytes]:
    """A server frame message -> (JSON header, JPEG bytes)."""
    (n,) = struct.unpack(">I", message[:4])
    return json.loads(message[4:4 + n]), message[4 + n:]
