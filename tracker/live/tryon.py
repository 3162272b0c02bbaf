"""The try-on controller of `tracker.camera`: a render callable driven by a view state, and its keys.

`TryOn` renders a `tracker.camera_keys.ViewState` (look, lipstick, intensity,
landmarks, before/after split) and updates it from the keys pressed.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from tracker.camera_keys import KEY_HELP, ViewState, handle_key
from tracker.draw import draw_landmarks
from tracker.io import write_image
from tracker.types import Face

log = logging.getLogger(__name__)


class TryOn:
    """Makeup try-on driven by keys: a render callable for `run_live` plus its key handler.

    state : the initial `ViewState`; state.looks are the preset names keys 1-9 select.
    overrides : `tracker.makeup.look_with_overrides` arguments applied to every
        preset (lip_color, lip_finish, eyeshadow_color, blush_color), e.g. from
        the command line; the lipstick key cycle replaces lip_color.
    snapshot_dir : where the snapshot key saves PNGs (default: the working directory).
    on_snapshot : called with the path of each snapshot saved.

    Use `tryon` as render, `tryon.on_key` as on_key and `tryon.caption` as caption.
    """

    def __init__(self, state: ViewState, overrides: dict | None = None, snapshot_dir=None,
                 on_snapshot: Callable[[Path], None] | None = None):
        if not state.looks:
            raise ValueError("TryOn needs at least one preset look in state.looks")
        self.state = state
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        self.on_snapshot = on_snapshot
        self.last_frame: np.ndarray | None = None
        self._presets: dict = {}
        self._cached: tuple | None = None

    def _preset(self, name: str):
        from tracker.makeup import load_look, look_with_overrides

        if name not in self._presets:
            look = load_look(name)
            try:
                look = look_with_overrides(look, **self.overrides)
            except ValueError as exc:
                log.warning("look %s: command-line settings not applied (%s)", name, exc)
            self._presets[name] = look
        return self._presets[name]

    def look(self):
        """The `tracker.makeup.Look` the state selects, or None (makeup off)."""
        s = self.state
        if not s.makeup:
            return None
        key = (s.look_name, s.lip, s.intensity)
        if self._cached is None or self._cached[0] != key:
            from tracker.makeup import look_with_overrides

            look = look_with_overrides(self._preset(s.look_name), lip_color=s.lip_color, intensity=s.intensity)
            self._cached = (key, look)
        return self._cached[1]

    def __call__(self, frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        """The frame as the state says: makeup, before/after split, landmarks. A new image."""
        from tracker.makeup import render

        look = self.look()
        out = render(frame, faces, look) if look is not None else frame.copy()
        if self.state.split:
            h, w = frame.shape[:2]
            mid = w // 2
            out[:, :mid] = frame[:, :mid]
            cv2.line(out, (mid, 0), (mid, h - 1), (255, 255, 255), 1)
            scale = 0.5 * max(1.0, w / 640.0)
            for text, x in (("before", 8), ("after", mid + 8)):
                cv2.putText(out, text, (x, h - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(out, text, (x, h - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                            cv2.LINE_AA)
        if self.state.landmarks:
            draw_landmarks(out, faces)
        self.last_frame = out
        return out

    def caption(self) -> str:
        """Status text: the look, intensity and lipstick; the keys when help is on."""
        text = self.state.describe() + ("" if self.state.help else "   (h: keys)")
        return text + ("\n" + KEY_HELP if self.state.help else "")

    def on_key(self, key: int) -> bool:
        """Apply one key (see tracker.camera_keys); False when the session should end."""
        state = handle_key(self.state, key)
        if state.snapshot:
            state = dataclasses.replace(state, snapshot=False)
            if self.last_frame is not None:
                path = self.save_snapshot()
                if self.on_snapshot is not None:
                    self.on_snapshot(path)
        self.state = state
        return not state.quit

    def save_snapshot(self) -> Path:
        """Write the last rendered frame (no status line) as tryon-DATE-TIME.png; returns its path."""
        if self.last_frame is None:
            raise RuntimeError("no frame rendered yet")
        folder = self.snapshot_dir if self.snapshot_dir is not None else Path.cwd()
        stem = f"tryon-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = folder / f"{stem}.png", 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.png"
        write_image(path, self.last_frame)
        return path
