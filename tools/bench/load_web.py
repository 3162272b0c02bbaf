"""Load check of the browser try-on server: N live WebSocket clients on loopback.

usage: python -m tools.bench.load_web [--clients 4] [--seconds 20] [--frames N] [--server-args "..."]

Starts `python -m tracker.web --port 0` (on 127.0.0.1 only) with --max-sessions = clients,
then runs the clients side by side, each as the page does: send a frame of the bundled
sample clip (JPEG, 640x480, cycled), wait for its answer, send the next. Each client
stops after --frames answers or --seconds, whichever comes first, so the run is bounded
in count and time. Reports per client frames/s, round-trip latency p50/p95 and errors,
and the server's resident memory before the clients and after them.

The server and the frames come from `tools.web_server`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from tools.web_server import ServerProcess, sample_jpegs


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
