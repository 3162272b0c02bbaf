"""The try-on server's model side, free of any web library: uploads checked and decoded
within limits, look settings parsed, frames tracked and rendered.

    engine = Engine.load("demo", "blaze")            # landmark model + detector, loaded once
    image = decode_image(body, Limits())             # RequestError on junk, too many bytes or pixels
    faces, out = engine.render_photo(image, Settings(look="bold"))
    session = engine.session()                       # a live connection: its own Tracker
    result = session.process(image, settings)        # FrameResult(image, faces, times)

Every error a client can cause is a `RequestError` with an HTTP status and a message
naming the input; nothing a client sends is written anywhere. The model objects are
shared by every session and called from several worker threads at once: nnlite keeps
its buffers per calling thread, and with `threads=1` (the server's default per worker)
no Numba kernel opens a parallel region, which Numba's workqueue threading layer
cannot run from two threads at a time.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from tracker.draw import draw_landmarks
from tracker.makeup import (DEFAULT_LOOK, FINISHES, Look, available_looks, load_look,
                            look_with_overrides)
from tracker.tracking import Tracker
from tracker.types import Face

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
OUTPUT_FORMATS = {"jpeg": ("image/jpeg", ".jpg"), "png": ("image/png", ".png")}
JPEG_QUALITY = 85
MAX_SIDE = 16384  # no decoder we use accepts more; a header saying so is corrupt


class RequestError(Exception):
    """A client's mistake: `status` is the HTTP status to answer with, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one upload or live frame may be: bytes of the encoded image, pixels decoded."""
    max_upload_bytes: int = 15 * 2**20
    max_pixels: int = 16_000_000

    def __post_init__(self):
        if self.max_upload_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"limits must be positive, got {self}")


# ----------------------------------------------------------------------- decoding

def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first start-of-frame segment, None when there is none."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:          # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = struct.unpack("<I", data[21:25])[0]
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def probe_image(data: bytes) -> tuple[str, int, int]:
    """(content type, width, height) read from the header of a JPEG, PNG or WebP file.

    Reading the size before decoding keeps a small file that decodes to a huge image
    (a "decompression bomb") from ever being decoded. RequestError 400 for anything else.
    """
    size, kind = None, None
    if data[:3] == b"\xff\xd8\xff":
        kind, size = "image/jpeg", _jpeg_size(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        kind, size = "image/png", struct.unpack(">II", data[16:24])
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind, size = "image/webp", _webp_size(data)
    if kind is None:
        raise RequestError(400, f"the body is not a JPEG, PNG or WebP image ({len(data)} bytes starting "
                                f"{data[:8].hex(' ')})")
    if size is None or not (0 < size[0] <= MAX_SIDE and 0 < size[1] <= MAX_SIDE):
        raise RequestError(400, f"corrupt {kind} image: no valid size in its header")
    return kind, int(size[0]), int(size[1])


def decode_image(data: bytes, limits: Limits) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W, 3) BGR, EXIF orientation applied.

    RequestError: 400 empty, not an image or corrupt; 413 over `limits` (bytes, or
    pixels as read from the header, before any decoding).
    """
    if not data:
        raise RequestError(400, "empty body: send the image's bytes (JPEG, PNG or WebP)")
    if len(data) > limits.max_upload_bytes:
        raise RequestError(413, f"upload too large: {len(data)} bytes, the limit is {limits.max_upload_bytes}")
    kind, w, h = probe_image(data)
    if w * h > limits.max_pixels:
        raise RequestError(413, f"image too large: {w}x{h} = {w * h} pixels, the limit is {limits.max_pixels}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        raise RequestError(400, f"cannot decode the {kind} image ({w}x{h}): truncated or corrupt")
    return image


def encode_image(image: np.ndarray, fmt: str = "jpeg") -> bytes:
    """uint8 BGR image -> JPEG (quality JPEG_QUALITY) or PNG bytes."""
    ext = OUTPUT_FORMATS[fmt][1]
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise RuntimeError(f"cannot encode a {image.shape} image as {fmt}")
    return buf.tobytes()


# ----------------------------------------------------------------------- settings

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text == "":
        return True
    if text in _FALSE:
        return False
    raise RequestError(400, f"{name}={value!r}: expected one of {', '.join(_TRUE + _FALSE)}")


@dataclass(frozen=True)
class Settings:
    """How to render: a preset look (None: no makeup) with optional lipstick overrides.

    look : a preset name (`tracker.makeup.available_looks()`) or None;
    lip_color : hex colour replacing the look's lipstick (None: the look's own);
    lip_finish : "matte" or "gloss" (None: the look's own);
    intensity : overall makeup intensity in [0, 1];
    landmarks : draw the landmark overlay on the rendered image;
    format : output image format for the HTTP API, "jpeg" or "png".
    """
    look: str | None = DEFAULT_LOOK
    lip_color: str | None = None
    lip_finish: str | None = None
    intensity: float = 1.0
    landmarks: bool = False
    format: str = "jpeg"

    FIELDS = ("look", "lip_color", "lip_finish", "intensity", "makeup", "landmarks", "format")

    @classmethod
    def parse(cls, params) -> "Settings":
        """From query parameters or a JSON object (values may be strings); RequestError 400
        naming the parameter on an unknown name or a bad value. `makeup=0` means look=None."""
        unknown = sorted(set(params) - set(cls.FIELDS))
        if unknown:
            raise RequestError(400, f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(cls.FIELDS)}")
        get = params.get
        look = get("look") or DEFAULT_LOOK
        if look in ("none", "off") or not _flag("makeup", get("makeup", True)):
            look = None
        elif look not in available_looks():
            raise RequestError(400, f"unknown look {look!r}: choose one of {', '.join(available_looks())} or none")
        try:
            intensity = float(get("intensity", 1.0))
        except (TypeError, ValueError):
            intensity = float("nan")
        if not 0.0 <= intensity <= 1.0:
            raise RequestError(400, f"intensity={get('intensity')!r}: expected a number in [0, 1]")
        finish = get("lip_finish") or None
        if finish is not None and finish not in FINISHES:
            raise RequestError(400, f"lip_finish={finish!r}: choose one of {', '.join(FINISHES)}")
        fmt = get("format") or "jpeg"
        if fmt not in OUTPUT_FORMATS:
            raise RequestError(400, f"format={fmt!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
        settings = cls(look=look, lip_color=get("lip_color") or None, lip_finish=finish,
                       intensity=intensity, landmarks=_flag("landmarks", get("landmarks", False)), format=fmt)
        settings.to_look()  # a bad colour fails here, while the client is listening
        return settings

    def to_look(self) -> Look | None:
        """The `tracker.makeup.Look` to render, None for no makeup; RequestError 400 on a bad colour."""
        if self.look is None:
            return None
        try:
            return look_with_overrides(load_look(self.look), lip_color=self.lip_color,
                                       lip_finish=self.lip_finish, intensity=self.intensity)
        except ValueError as exc:
            raise RequestError(400, str(exc)) from None


def faces_to_json(faces: list[Face], digits: int = 2) -> list[dict]:
    """Faces as the landmark files write them: track_id, score, box [x0, y0, x1, y1] and
    landmarks [[x, y] x 68], frame pixels (0-based pixel centres)."""
    return [{"track_id": f.track_id, "score": round(float(f.score), 4),
             "box": np.round(np.asarray(f.box.as_tuple(), np.float64), digits).tolist(),
             "landmarks": np.round(np.asarray(f.landmarks, np.float64), digits).tolist()} for f in faces]


# ----------------------------------------------------------------------- engine

@dataclass(frozen=True)
class FrameTimes:
    """Seconds one frame spent tracking (detector + landmark model) and rendering."""
    track: float
    render: float


@dataclass
class FrameResult:
    """One processed frame: the rendered uint8 BGR image, its faces and times."""
    image: np.ndarray
    faces: list[Face]
    times: FrameTimes


def render_faces(image: np.ndarray, faces: list[Face], settings: Settings, look: Look | None) -> np.ndarray:
    """The image with `look` rendered on `faces` (a new image), plus the overlay when asked."""
    from tracker.makeup import render

    out = render(image, faces, look)
    if settings.landmarks:
        draw_landmarks(out, faces)
    return out


class Session:
    """One live connection: its own `Tracker` (tracking state, track ids, smoothing) over
    the engine's shared models. `process` is called for one frame at a time."""

    def __init__(self, engine: "Engine"):
        self.engine = engine
        self.tracker = engine.tracker(static_image_mode=False)
        self._look_key: Settings | None = None
        self._look: Look | None = None
        self._start = time.monotonic()

    def look(self, settings: Settings) -> Look | None:
        """`settings.to_look()`, rebuilt only when the settings change."""
        if settings != self._look_key:
            self._look, self._look_key = settings.to_look(), settings
        return self._look

    def process(self, image: np.ndarray, settings: Settings) -> FrameResult:
        """Track one frame (timestamped by arrival, so smoothing follows real time) and render it."""
        t0 = time.perf_counter()
        faces = self.tracker.process(image, timestamp=time.monotonic() - self._start)
        t1 = time.perf_counter()
        out = render_faces(image, faces, settings, self.look(settings))
        return FrameResult(out, faces, FrameTimes(t1 - t0, time.perf_counter() - t1))

    def close(self) -> None:
        self.tracker.close()


@dataclass
class Engine:
    """The models every session shares, loaded once.

    landmarker : a `tracker.landmarks.Landmarker` (or any object the Tracker takes);
    detector : a `tracker.detection.Detector`; it keeps no per-frame state, so sessions share it;
    max_faces : most faces tracked per frame;
    threads : Numba thread cap per call (1 when several workers run frames side by side).
    """
    landmarker: object
    detector: object
    max_faces: int = 1
    threads: int | None = 1
    looks: tuple[str, ...] = field(default_factory=available_looks)

    @classmethod
    def load(cls, weights, detector: str, max_faces: int = 1, backend: str | None = None,
             threads: int | None = 1) -> "Engine":
        """Load the landmark model (a file or a shipped name) and the detector by name;
        `tracker.errors.InputError` naming the file on failure."""
        from tracker.detection import build_detector
        from tracker.landmarks import load_landmarker

        landmarker = load_landmarker(weights, backend=backend, threads=threads)
        return cls(landmarker, build_detector(detector, backend), max_faces=max_faces, threads=threads)

    def tracker(self, static_image_mode: bool) -> Tracker:
        """A new Tracker over the shared models."""
        return Tracker(self.landmarker, self.detector, max_faces=self.max_faces,
                       static_image_mode=static_image_mode, threads=self.threads)

    def session(self) -> Session:
        return Session(self)

    def warmup(self, size: tuple[int, int] = (640, 480)) -> float:
        """Compile (or load from Numba's cache) every kernel now; -> seconds taken."""
        from tracker.live import warmup

        look = Settings().to_look()
        return warmup(self.tracker(static_image_mode=False), lambda f, faces: render_faces(
            f, faces, Settings(), look), size)

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Faces in one photo (static-image mode: detection, no tracking state)."""
        with self.tracker(static_image_mode=True) as tracker:
            return tracker.process(image)

    def render_photo(self, image: np.ndarray, settings: Settings) -> tuple[list[Face], np.ndarray]:
        """-> (faces, rendered image) for one photo."""
        look = settings.to_look()
        faces = self.find_faces(image)
        return faces, render_faces(image, faces, settings, look)
