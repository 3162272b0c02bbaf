"""Load check of the browser try-on server: N live WebSocket clients on loopback.

usage: python -m tools.bench.load_web [--clients 4] [--seconds 20] [--frames N] [--server-args "..."]

Starts `python -m tracker.web --port 0` (on 127.0.0.1 only) with --max-sessions = clients,
then runs the clients side by side, each as the page does: send a frame of the bundled
sample clip (JPEG, 640x480, cycled), wait for its answer, send the next. Each client
stops after --frames answers or --seconds, whichever comes first, so the run is bounded
in count and time. Reports per client frames/s, round-trip latency p50/p95 and errors,
and the server's resident memory before the clients and after them.

`ServerProcess` and `sample_jpegs` are also what the tests use to run a real server.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import shlex
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
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


@dataclass
class ClientStats:
    """One client's run: answered frames, round trips in seconds, errors, wall time."""
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


async def run_client(ws_url: str, jpegs: list[bytes], frames: int, seconds: float) -> ClientStats:
    """One live client: settings, then frame -> answer -> next frame, until `frames` or `seconds`."""
    from websockets.asyncio.client import connect

    stats = ClientStats()
    start = time.perf_counter()
    try:
        async with connect(ws_url, max_size=None, compression=None, open_timeout=30) as ws:
            hello = json.loads(await ws.recv())
            if hello.get("type") != "hello":
                stats.errors.append(f"first message {hello!r}")
            await ws.send(json.dumps({"type": "settings", "look": "natural"}))
            i = 0
            while stats.frames < frames and time.perf_counter() - start < seconds:
                sent = time.perf_counter()
                await ws.send(jpegs[i % len(jpegs)])
                i += 1
                answer = await asyncio.wait_for(ws.recv(), timeout=30)
                if isinstance(answer, str):
                    stats.errors.append(json.loads(answer).get("message", answer))
                    continue
                stats.latencies.append(time.perf_counter() - sent)
                stats.frames += 1
    except Exception as exc:  # a refused or broken connection is a result of the check
        stats.errors.append(f"{type(exc).__name__}: {exc}")
    stats.seconds = time.perf_counter() - start
    return stats


async def run_clients(ws_url: str, clients: int, frames: int, seconds: float) -> list[ClientStats]:
    jpegs = sample_jpegs(30)
    return list(await asyncio.gather(*(run_client(ws_url, jpegs[k:] + jpegs[:k], frames, seconds)
                                       for k in range(clients))))


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.load_web", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="live clients at once (default 4, at most 32)")
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per client (default 20, at most 300)")
    parser.add_argument("--frames", type=int, default=100_000, help="most answered frames per client")
    parser.add_argument("--server-args", default="", help="more tracker.web arguments, e.g. '--workers 1'")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 32 and 0 < args.seconds <= 300 and args.frames >= 1):
        parser.error("--clients must be 1..32, --seconds in (0, 300], --frames >= 1")
    server_args = ["--max-sessions", str(args.clients), *shlex.split(args.server_args)]
    with ServerProcess(*server_args) as server:
        before = server.rss_mb()
        start = time.perf_counter()
        results = asyncio.run(run_clients(server.ws_url, args.clients, args.frames, args.seconds))
        wall = time.perf_counter() - start
        after = server.rss_mb()
    all_latencies = [x for r in results for x in r.latencies]
    errors = sum(len(r.errors) for r in results)
    print(f"{args.clients} clients, {wall:.1f} s, {os.cpu_count()} CPUs; server RSS {before:.0f} MB before, "
          f"{after:.0f} MB after")
    print("| client | frames | frames/s | latency p50 ms | latency p95 ms | errors |")
    print("|---|---|---|---|---|---|")
    for k, r in enumerate(results):
        print(f"| {k + 1} | {r.frames} | {r.fps:.1f} | {percentile_ms(r.latencies, 50):.1f} | "
              f"{percentile_ms(r.latencies, 95):.1f} | {len(r.errors)} |")
    print(f"| all | {sum(r.frames for r in results)} | {sum(r.fps for r in results):.1f} | "
          f"{percentile_ms(all_latencies, 50):.1f} | {percentile_ms(all_latencies, 95):.1f} | {errors} |")
    for k, r in enumerate(results):
        for e in r.errors[:3]:
            print(f"client {k + 1} error: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
