"""What the try-on window shows, and how keys change it: a pure (state, key) -> state function.

    state = ViewState(looks=("bold", "evening", "natural"), look=2)
    state = handle_key(state, ord("c"))      # next lipstick colour
    state.snapshot                           # True after "s": the session saves one, then clears it

No window, no OpenCV: `tracker.live.TryOn` applies the state to frames and
performs the side effects the state asks for (snapshot, quit).

Keys (`KEY_HELP`):
  1-9      switch to preset look N (in `looks` order); also turns makeup on
  m        makeup on / off
  c / C    next / previous lipstick colour (`LIP_COLORS`; the first entry is the look's own)
  + / -    intensity up / down by 0.1 (also = and _)
  l        landmarks overlay on / off
  b        before / after split (left half untouched, right half made up)
  h        key help on / off
  s        save a snapshot (PNG in the working directory)
  q / Esc  quit
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# (label, hex); index 0 of the cycle is the look's own colour, then these.
LIP_COLORS = (
    ("red", "#b3001b"),
    ("rose", "#c4626e"),
    ("berry", "#7b1e3a"),
    ("coral", "#e0685a"),
    ("nude", "#c48f84"),
    ("plum", "#5e1f3b"),
)
INTENSITY_STEP = 0.1
ESC = 27
KEY_HELP = "1-9 look  m makeup  c/C lips  +/- intensity  l landmarks  b before/after  s snapshot  h help  q quit"


@dataclass(frozen=True)
class ViewState:
    """Everything the keys control.

    looks : preset names selectable with keys 1-9; look : index into looks;
    makeup : render makeup at all; lip : 0 = the look's own lipstick, i > 0 =
    LIP_COLORS[i - 1]; intensity : overall makeup intensity in [0, 1];
    landmarks, split, help : overlays; snapshot : a snapshot is wanted (the
    session saves it and clears the flag); quit : the session should end.
    """
    looks: tuple[str, ...] = ()
    look: int = 0
    makeup: bool = True
    lip: int = 0
    intensity: float = 1.0
    landmarks: bool = False
    split: bool = False
    help: bool = False
    snapshot: bool = False
    quit: bool = False

    def __post_init__(self):
        if self.looks and not 0 <= self.look < len(self.looks):
            raise ValueError(f"look index {self.look} out of range for {len(self.looks)} looks")
        if not 0 <= self.lip <= len(LIP_COLORS):
            raise ValueError(f"lip index {self.lip} out of range 0..{len(LIP_COLORS)}")
        if not 0.0 <= self.intensity <= 1.0:
            raise ValueError(f"intensity {self.intensity} outside [0, 1]")

    @property
    def look_name(self) -> str | None:
        """The selected preset's name (None when there are no presets)."""
        return self.looks[self.look] if self.looks else None

    @property
    def lip_color(self) -> str | None:
        """The lipstick colour the keys chose (hex), or None for the look's own."""
        return LIP_COLORS[self.lip - 1][1] if self.lip else None

    def describe(self) -> str:
        """A short line for the status overlay, e.g. "natural 80% lips rose"."""
        if not self.makeup:
            return "no makeup"
        lips = f" lips {LIP_COLORS[self.lip - 1][0]}" if self.lip else ""
        return f"{self.look_name or 'look'} {round(100 * self.intensity)}%{lips}"


def _key_char(key: int | None) -> str | None:
    if key is None or key < 0:
        return None
    return chr(key & 0xFF)  # the low byte, as cv2.waitKey returns it


def handle_key(state: ViewState, key: int) -> ViewState:
    """The state after one key press (key: a code from cv2.waitKey; -1 = no key).

    Unknown keys leave the state as it is (the same object).
    """
    ch = _key_char(key)
    if ch is None:
        return state
    replace = dataclasses.replace
    if ch in ("q", "Q", chr(ESC)):
        return replace(state, quit=True)
    if ch.isdigit() and ch != "0":
        n = int(ch) - 1
        if n < len(state.looks):
            return replace(state, look=n, makeup=True)
        return state
    if ch == "m":
        return replace(state, makeup=not state.makeup)
    if ch in ("c", "C"):
        step = 1 if ch == "c" else -1
        return replace(state, lip=(state.lip + step) % (len(LIP_COLORS) + 1), makeup=True)
    if ch in ("+", "=", "-", "_"):
        step = INTENSITY_STEP if ch in ("+", "=") else -INTENSITY_STEP
        value = round(min(1.0, max(0.0, state.intensity + step)), 2)
        return replace(state, intensity=value, makeup=True)
    if ch == "l":
        return replace(state, landmarks=not state.landmarks)
    if ch == "b":
        return replace(state, split=not state.split)
    if ch == "h":
        return replace(state, help=not state.help)
    if ch == "s":
        return replace(state, snapshot=True)
    return state
