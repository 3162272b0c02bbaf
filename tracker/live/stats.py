"""What the live loop reports: per frame to its sink (`FrameInfo`), per session to its caller (`LiveStats`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What a sink learns about the frame it shows."""
    index: int          # the frame's index in the source
    captured_at: float  # when it became available (time.perf_counter seconds)
    processed: int      # frames processed so far, this one included
    dropped: int        # frames dropped so far
    fps: float          # frames shown per second, recent average


@dataclass(frozen=True, eq=False)
class LiveStats:
    """What `run_live` did.

    frames_offered = frames_processed + frames_dropped. Per processed frame
    (float64 arrays, ms): latency_ms (available -> shown), detect_ms,
    landmarks_ms, render_ms. ended_by: "end of source", "frame limit", "quit",
    "window closed" or "stopped".
    """
    frames_offered: int
    frames_processed: int
    frames_dropped: int
    frames_with_faces: int
    seconds: float
    latency_ms: np.ndarray
    detect_ms: np.ndarray
    landmarks_ms: np.ndarray
    render_ms: np.ndarray
    ended_by: str

    @property
    def frames_per_second(self) -> float:
        """Frames shown per second of wall time."""
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    def latency_percentile(self, q: float) -> float:
        """The q-th percentile of capture-to-display latency in ms (nan when nothing was shown)."""
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms.size else float("nan")

    @property
    def latency_median_ms(self) -> float:
        return self.latency_percentile(50)

    @property
    def latency_p95_ms(self) -> float:
        return self.latency_percentile(95)

    def summary(self) -> str:
        """One line: shown / dropped, frames/s, latency, median stage times."""
        def med(a):
            return float(np.median(a)) if a.size else float("nan")
        return (f"shown {self.frames_processed} of {self.frames_offered} frames "
                f"({self.frames_dropped} dropped), {self.frames_per_second:.1f} frames/s, "
                f"latency median {self.latency_median_ms:.1f} ms, p95 {self.latency_p95_ms:.1f} ms; "
                f"median detect {med(self.detect_ms):.1f} / landmarks {med(self.landmarks_ms):.1f} / "
                f"render {med(self.render_ms):.1f} ms")
