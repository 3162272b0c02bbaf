"""Tracker benchmark on synthetic video made from validation faces, with known motion.

USAGE
    python -m tools.bench.tracking --weights weights/demo.h5
    python -m tools.bench.tracking --weights weights/demo.h5 --faces 15 --mode both \
        --json bench_tracking.json

Each validation face of 300-W (the fixed split `tools.landmarks.data.split_pairs(pairs,
0.1, seed=0)[1]`; never training faces, never test data) is pasted into a
640x480 frame: the whole face image is warped by a per-frame similarity
(translation, zoom, roll) onto a synthetic background with feathered edges,
per-frame sensor noise is added, and the ground-truth points go through the
same similarity. Three sequences per face, 30 frames/s:

    still   90 frames, constant pose, sensor noise only;
    moving  120 frames, smooth translation (up to ~2.5 inter-ocular distances
            per second), zoom +/-15% and roll +/-15 degrees;
    leave   90 frames: still, slides out of the right edge, 20 frames of
            empty background, slides back in from the left, still again.

The tracker runs with smoothing off and the One Euro filter is applied to its
raw output afterwards with the tracker's own semantics (a new filter per track,
t = frame / fps), so one run gives both the raw model output and the smoothed
output (`smooth_track`; tests check it equals the tracker's own smoothing).

Reported per sequence (means over faces; NME, jitter and lag in % of the
ground-truth inter-ocular distance |p36 - p45|):

    nme raw / smooth   per-frame NME of the tracker output while the face is
                       fully in view, mean and (med) median over faces
                       (per-frame values in the JSON);
    jitter             still: mean frame-to-frame landmark motion (per
                       landmark, per frame), from frame 10 on;
    lag                moving: mean error along the direction of motion
                       (positive = behind the face), raw and smoothed;
    lost               frames with the face fully in view but no output;
    recover            leave: frames from the first frame the face is fully
                       back in view to the first output that covers it
                       (landmark-box IoU >= 0.5); 0 = on that very frame;
    ghost              leave: frames with output while the face is out of view;
    fps                end to end (tracker.process + the One Euro step) on
                       640x480 frames with one face, landmarks only; tracking
                       frames (no detector call) apart from detection frames.

With --mediapipe PYTHON (a venv made by `python -m venv mpvenv && mpvenv/bin/pip
install mediapipe==0.10.14 'numpy<2'`), MediaPipe's legacy face_mesh in tracking mode
runs in that interpreter on the same frames, each timed sequence right after ours (so
load on a shared machine hits both alike); its tracking frames are those with a face
out after a frame with a face (cvtColor to RGB + FaceMesh.process), and both frames/s
are printed side by side with their ratio, with both landmark models' multiply-adds a
frame (the peer's read from its .tflite by `tools.tflite_macs`).

Modes: `detector` starts (and restarts) tracks with the default detector of
`tracker.detection.DETECTORS` and reports when it misses; `oracle` replaces it
by the ground-truth landmark box whenever the tracker asks (when the face is
fully in view), so landmark tracking is measured independently of the detector.

The tracker runs with its own defaults (crop deadband, tracking threshold
from the weights config else 0.5) unless --min-tracking-score / --crop-deadband
say otherwise; --smoothing sets the One Euro parameters applied afterwards.
Use NUMBA_NUM_THREADS / --threads to match the deployment (the 2-core target
machines); timings on a loaded machine are upper bounds.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from nnlite.model import count_macs
from tools.common import machine, nme
from tools.peer import PeerTracker, peer_tracking_seconds
from tools.sequences import (
    DATA_ROOT,
    FACE_IOD,
    FPS,
    FRAME_SIZE,
    STILL_WARMUP,
    OracleDetector,
    Record,
    TimedDetector,
    build_sequences,
    first_full_return,
    jitter,
    lag,
    load_landmarker,
    make_tracker,
    run_sequence,
    smooth_track,
    validation_faces,
)
from tracker.detection import DEFAULT_DETECTOR
from tracker.geometry import landmark_box
from tracker.smoothing import SmoothingParams
from tracker.types import Box

SEQUENCES = ("still", "moving", "leave")
RECOVER_IOU = 0.5


# -- metrics ----------------------------------------------------------------------------------

def sequence_metrics(rec: Record, smoothed: np.ndarray) -> dict:
    """Figures of one sequence (fractions are turned into % here)."""
    full = np.array([v == "full" for v in rec.visible])
    none = np.array([v == "none" for v in rec.visible])
    have = rec.track > 0
    e_raw, e_smooth = nme(rec.raw, rec.truth), nme(smoothed, rec.truth)
    tracked = full & have
    out = {
        "frames": len(rec.visible),
        "nme_raw": _pct(np.nanmean(e_raw[tracked]) if tracked.any() else np.nan),
        "nme_smooth": _pct(np.nanmean(e_smooth[tracked]) if tracked.any() else np.nan),
        "lost": int((full & ~have).sum()),
        "first_face": int(np.argmax(have)) if have.any() else None,
        "detector_calls": int(rec.detected.sum()),
        "detector_missed": int(((rec.detected > 0) & (rec.found == 0) & full).sum()),
        "tracks": int(len(set(rec.track[have].tolist()))),
        "per_frame_nme_raw": [_pct(x) for x in e_raw],
        "per_frame_nme_smooth": [_pct(x) for x in e_smooth],
    }
    if rec.name == "still":
        out["jitter_raw"] = _pct(jitter(rec.raw, rec.truth, rec.track, STILL_WARMUP))
        out["jitter_smooth"] = _pct(jitter(smoothed, rec.truth, rec.track, STILL_WARMUP))
    if rec.name == "moving":
        out["lag_raw"] = _pct(lag(rec.raw, rec.truth))
        out["lag_smooth"] = _pct(lag(smoothed, rec.truth))
    if rec.name == "leave":
        back = first_full_return(rec.visible)
        recover = None
        if back is not None:
            for i in range(back, len(rec.visible)):
                if have[i] and Box(*landmark_box(rec.raw[i])).iou(Box(*landmark_box(rec.truth[i]))) >= RECOVER_IOU:
                    recover = i - back
                    break
        out["recover"] = recover
        out["ghost"] = int((none & have).sum())
        gone = int(np.argmax(none)) if none.any() else None
        out["dropped_after"] = None if gone is None else next(
            (i - gone for i in range(gone, len(have)) if not have[i]), None)
    return out


def _pct(x) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else round(100.0 * x, 4)


# -- driver -----------------------------------------------------------------------------------

def benchmark(landmarker, samples, mode: str, params: SmoothingParams, detector_name: str,
              min_tracking_score=None, crop_deadband=None, noise: float = 2.0, progress=True,
              peer: PeerTracker | None = None):
    """Run every sequence of every face in one mode -> (per-face results, timing dict).

    With a `peer`, each timed sequence (still, moving) goes to it right after our tracker,
    so both see the same frames under the same machine load."""
    from tracker.detection import DETECTORS

    oracle = OracleDetector() if mode == "oracle" else None
    timed = TimedDetector(oracle if oracle is not None else DETECTORS[detector_name]())
    tracker = make_tracker(landmarker, timed, min_tracking_score, crop_deadband)
    faces, track_s, detect_frame_s, smooth_s, model_s, other_s, peer_s = [], [], [], [], [], [], []
    peer_cpu, peer_wall = (peer.cpu_s, peer.wall_s) if peer is not None else (0.0, 0.0)
    for k, sample in enumerate(samples):
        seqs = build_sequences(sample.image, sample.points, seed=k, noise=noise)
        per = {"face": sample.name}
        for name, seq in seqs.items():
            rec = run_sequence(seq, tracker, timed, oracle)
            smoothed, per_call = smooth_track(rec.raw, rec.track, params)
            per[name] = sequence_metrics(rec, smoothed)
            if name != "leave":   # timing: one face in view
                on = rec.track > 0
                track_s += (rec.process_s[on & (rec.detected == 0)] + per_call).tolist()
                model_s += rec.landmarks_s[on & (rec.detected == 0)].tolist()
                other_s += (rec.process_s - rec.landmarks_s)[on & (rec.detected == 0)].tolist()
                detect_frame_s += (rec.process_s[rec.detected > 0]).tolist()
                smooth_s.append(per_call)
                if peer is not None:
                    peer_s += peer_tracking_seconds(*peer.run([seq.frame(i) for i in range(len(seq))])).tolist()
        faces.append(per)
        if progress:
            print(f"  [{mode}] face {k + 1}/{len(samples)} {sample.name}", file=sys.stderr, flush=True)
    timing = {"tracking_frames": len(track_s), "detection_frames": len(detect_frame_s),
              "tracking_ms_mean": _ms(np.mean(track_s)) if track_s else None,
              "tracking_ms_median": _ms(np.median(track_s)) if track_s else None,
              "tracking_ms_p90": _ms(np.percentile(track_s, 90)) if track_s else None,
              "tracking_fps": round(1.0 / np.mean(track_s), 1) if track_s else None,
              "tracking_fps_median": round(1.0 / np.median(track_s), 1) if track_s else None,
              "tracking_model_ms_median": _ms(np.nanmedian(model_s)) if np.isfinite(model_s).any() else None,
              "tracking_other_ms_median": _ms(np.nanmedian(other_s)) if np.isfinite(other_s).any() else None,
              "detection_ms_median": _ms(np.median(detect_frame_s)) if detect_frame_s else None,
              "smoothing_ms": _ms(np.mean(smooth_s)) if smooth_s else None,
              "model_macs": count_macs(landmarker.model.config)}
    if peer is not None:
        cpu, wall = peer.cpu_s - peer_cpu, peer.wall_s - peer_wall
        timing["peer"] = {"cores_used": round(cpu / wall, 2) if wall else None, "name": f"MediaPipe {peer.version} face_mesh, tracking mode",
                          "model_macs": peer.model_macs,
                          "tracking_frames": len(peer_s),
                          "tracking_fps": round(1.0 / np.mean(peer_s), 1) if peer_s else None,
                          "tracking_fps_median": round(1.0 / np.median(peer_s), 1) if peer_s else None,
                          "tracking_ms_median": _ms(np.median(peer_s)) if peer_s else None}
    return faces, timing


def _ms(x) -> float:
    return round(1000.0 * float(x), 3)


def _mean(values):
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(faces: list[dict]) -> dict:
    """Means over faces (None values skipped), NME medians over faces, and counts."""
    s = {}
    for name in SEQUENCES:
        keys = [k for k, v in faces[0][name].items() if not k.startswith("per_frame")
                and (v is None or isinstance(v, (int, float)))]
        s[name] = {k: _mean([f[name][k] for f in faces]) for k in keys}
        for k in ("nme_raw", "nme_smooth"):
            vals = [f[name][k] for f in faces if f[name][k] is not None]
            s[name][k + "_median"] = float(np.median(vals)) if vals else None
    rec = [f["leave"]["recover"] for f in faces]
    s["leave"]["recovered_faces"] = sum(r is not None for r in rec)
    s["leave"]["recover_max"] = max((r for r in rec if r is not None), default=None)
    s["leave"]["recover_within_3"] = sum(r is not None and r <= 3 for r in rec)
    s["faces"] = len(faces)
    s["start_missed_faces"] = sum(f["still"]["first_face"] is None for f in faces)
    return s


def format_table(results: dict) -> str:
    def f(x, fmt="{:.2f}"):
        return "-" if x is None else fmt.format(x)

    lines = [f"{'mode':9s}{'seq':8s}{'nme raw':>9s}{'(med)':>7s}{'smooth':>8s}{'(med)':>7s}"
             f"{'jitter raw':>11s}{'smooth':>8s}"
             f"{'lag raw':>9s}{'smooth':>8s}{'lost':>6s}{'recover':>9s}{'max':>5s}{'ghost':>6s}"]
    for mode, r in results.items():
        s = r["summary"]
        for name in SEQUENCES:
            q = s[name]
            lines.append(
                f"{mode:9s}{name:8s}{f(q['nme_raw']):>9s}{f(q['nme_raw_median']):>7s}"
                f"{f(q['nme_smooth']):>8s}{f(q['nme_smooth_median']):>7s}"
                f"{f(q.get('jitter_raw'), '{:.3f}'):>11s}{f(q.get('jitter_smooth'), '{:.3f}'):>8s}"
                f"{f(q.get('lag_raw')):>9s}{f(q.get('lag_smooth')):>8s}{f(q['lost'], '{:.1f}'):>6s}"
                f"{f(q.get('recover'), '{:.1f}'):>9s}{f(q.get('recover_max'), '{:d}'):>5s}"
                f"{f(q.get('ghost'), '{:.1f}'):>6s}")
    lines.append("")
    lines.append(f"{'mode':9s}{'faces':>6s}{'recovered<=3':>13s}{'start missed':>13s}"
                 f"{'track fps':>10s}{'(median)':>9s}{'track ms p90':>13s}{'model ms':>9s}{'det frame ms':>13s}")
    for mode, r in results.items():
        s, t = r["summary"], r["timing"]
        lines.append(f"{mode:9s}{s['faces']:6d}{s['leave']['recover_within_3']:>9d}/{s['faces']:<3d}"
                     f"{s['start_missed_faces']:>13d}{f(t['tracking_fps'], '{:.1f}'):>10s}"
                     f"{f(t['tracking_fps_median'], '{:.1f}'):>9s}{f(t['tracking_ms_p90']):>13s}"
                     f"{f(t['tracking_model_ms_median']):>9s}"
                     f"{f(t['detection_ms_median'], '{:.1f}'):>13s}")
    for mode, r in results.items():
        t = r["timing"]
        lines.append(f"{mode}: a tracking frame (median) = landmark model {f(t['tracking_model_ms_median'])} ms"
                     f" + rest of Tracker.process {f(t.get('tracking_other_ms_median'))} ms"
                     f" + One Euro {f(t['smoothing_ms'], '{:.3f}')} ms; {t['tracking_frames']} tracking, "
                     f"{t['detection_frames']} detection frames (still + moving)")
        p = t.get("peer")
        if p is not None and p["tracking_fps"] and t["tracking_fps"]:
            lines.append(f"{mode}: {p['name']} on the same frames, taking turns sequence by sequence: "
                         f"{p['tracking_fps']:.1f} tracking frames/s (median {p['tracking_fps_median']:.1f}, "
                         f"{p['tracking_frames']} frames) vs ours {t['tracking_fps']:.1f} "
                         f"(median {t['tracking_fps_median']:.1f}) = {t['tracking_fps'] / p['tracking_fps']:.2f}x "
                         f"(medians {t['tracking_fps_median'] / p['tracking_fps_median']:.2f}x); the peer's "
                         f"CPU time / frame time: {p['cores_used']} cores")
            if p.get("model_macs") and t.get("model_macs"):
                lines.append(f"{mode}: landmark models, multiply-adds a frame: ours {t['model_macs'] / 1e6:.1f}M, "
                             f"the peer's {p['model_macs'] / 1e6:.1f}M ({t['model_macs'] / p['model_macs']:.1f}x)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/demo.h5")
    ap.add_argument("--data", default=str(DATA_ROOT), help="300-W folder (the validation split is used)")
    ap.add_argument("--faces", type=int, default=15, help="validation faces (one per photo)")
    ap.add_argument("--mode", choices=["detector", "oracle", "both"], default="both")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, help="name in tracker.detection.DETECTORS")
    ap.add_argument("--min-tracking-score", type=float,
                    help="default: the tracker's own (weights config, else 0.5)")
    ap.add_argument("--crop-deadband", type=float, help="default: the tracker's own")
    ap.add_argument("--smoothing", type=float, nargs=3, metavar=("MIN_CUTOFF", "BETA", "D_CUTOFF"),
                    help="One Euro parameters (default: tracker.smoothing.SmoothingParams())")
    ap.add_argument("--noise", type=float, default=2.0, help="sensor noise sigma, grey levels")
    ap.add_argument("--threads", type=int, default=1, help="landmark model threads")
    ap.add_argument("--json", default="bench_tracking.json")
    ap.add_argument("--mediapipe", metavar="PYTHON",
                    help="interpreter of a venv with mediapipe 0.10.14 (and numpy<2): its legacy face_mesh "
                         "in tracking mode runs the same frames, sequence by sequence with ours")
    args = ap.parse_args(argv)

    params = SmoothingParams(*args.smoothing) if args.smoothing else SmoothingParams()
    try:
        landmarker = load_landmarker(args.weights, args.threads)
        samples = validation_faces(args.data, args.faces)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    peer = None
    if args.mediapipe:
        try:
            peer = PeerTracker(args.mediapipe)
        except (OSError, RuntimeError, ValueError) as e:
            print(f"error: --mediapipe {args.mediapipe}: {e}", file=sys.stderr)
            return 2
    # compile / load the kernels before timing
    warm = build_sequences(samples[0].image, samples[0].points, seed=999)["still"]
    make_tracker(landmarker, TimedDetector(OracleDetector())).process(warm.frame(0))
    from tracker.detection import DETECTORS
    DETECTORS[args.detector]().detect(warm.frame(0))
    if peer is not None:
        peer.run([warm.frame(i) for i in range(10)])

    modes = ["detector", "oracle"] if args.mode == "both" else [args.mode]
    results = {}
    for mode in modes:
        faces, timing = benchmark(landmarker, samples, mode, params, args.detector,
                                  args.min_tracking_score, args.crop_deadband, args.noise, peer=peer)
        results[mode] = {"summary": summarise(faces), "timing": timing, "faces": faces}
    if peer is not None:
        peer.close()
    probe = make_tracker(landmarker, OracleDetector(), args.min_tracking_score, args.crop_deadband)
    header = {"weights": str(args.weights), "machine": machine(), "faces": [s.name for s in samples],
              "smoothing": {"min_cutoff": params.min_cutoff, "beta": params.beta, "d_cutoff": params.d_cutoff},
              "min_tracking_score": probe.min_tracking_score, "crop_deadband": probe.crop_deadband,
              "noise": args.noise, "frame_size": FRAME_SIZE, "fps": FPS, "face_iod": FACE_IOD}
    print(f"{args.weights}: {len(samples)} validation faces, 640x480, {FPS:.0f} frames/s, "
          f"face inter-ocular {FACE_IOD:.0f} px, sensor noise sigma {args.noise}")
    print(f"machine: {header['machine']}")
    print(f"smoothing {header['smoothing']}, min_tracking_score {probe.min_tracking_score}, "
          f"crop_deadband {probe.crop_deadband}")
    print("NME, jitter, lag in % of inter-ocular distance; lost/recover/ghost in frames (means over faces)")
    print(format_table(results))
    Path(args.json).write_text(json.dumps({**header, "results": results}, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
