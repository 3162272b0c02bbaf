"""The live loop: newest frame in, rendered frame out, stale frames dropped.

    with open_source(0) as source, WindowSink("try-on") as window:
        stats = run_live(source, tracker, render, window, on_key=...)
    stats.summary()  # "shown 118 of 120 frames (2 dropped), 29.6 frames/s, latency median ..."

A capture thread (`FrameGrabber`) reads the source and keeps only the newest
frame in a one-slot mailbox. The loop takes it, tracks the faces, renders,
draws a status line (frames/s, detection / landmarks / render time, latency)
and hands the result to a sink: a window (`WindowSink`), a recording
(`RecordSink`), both (`MultiSink`) or nothing. A frame the loop had no time for
is replaced by the next one and counted as dropped, so latency stays bounded
by one frame's processing time instead of growing with a queue:
frames_offered == frames_processed + frames_dropped.

A source that is not live (a video file) is paced at its frame rate, frame i
becoming available at start + i / fps, so a file plays as if it were a camera;
that is how tests and benchmarks exercise this path. Latency is measured from
the moment a frame became available (paced: its due time; camera: when the
read returned) to the moment the sink has shown it.

The parts: `tracker.live.capture` (the capture thread and its clock),
`tracker.live.stats` (`FrameInfo`, `LiveStats`), `tracker.live.sinks` (window,
recording, progress; the window probe), `tracker.live.loop` (`run_live`,
`warmup`, the status line) and `tracker.live.tryon` (`TryOn`, the try-on
controller for `tracker.camera`: a render callable driven by a
`tracker.camera_keys.ViewState` plus the key handler that updates it). Their
public names are importable from `tracker.live` too.
"""
from tracker.live.capture import CapturedFrame, FrameGrabber, WallClock
from tracker.live.loop import draw_status, run_live, warmup
from tracker.live.sinks import MultiSink, ProgressSink, RecordSink, WindowSink, window_problem
from tracker.live.stats import FrameInfo, LiveStats
from tracker.live.tryon import TryOn

__all__ = ["CapturedFrame", "FrameGrabber", "FrameInfo", "LiveStats", "MultiSink", "ProgressSink", "RecordSink",
           "TryOn", "WallClock", "WindowSink", "draw_status", "run_live", "warmup", "window_problem"]
