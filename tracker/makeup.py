"""Virtual makeup: looks (sets of products) rendered on faces from their 68 landmarks.

    look = load_look("natural")
    look = look_with_overrides(look, lip_color="#b3001b", lip_finish="gloss")
    out = render(frame_bgr, [landmarks], look)   # a new uint8 image; frame is untouched

A `Look` holds at most one `Product` per kind (`PRODUCT_KINDS`, also the order they are
applied in). Each product has a hex colour (or "auto": the skin's own mean colour, used
for foundation that evens the skin tone without changing it), an intensity in [0, 1], a
finish ("matte" or "gloss") and a size. A look's own `intensity` scales every product.
A product is a layer of its colour lit by the photo's light (estimated from the face:
`tracker.lighting`), with the skin's fine texture and highlights kept on top; intensity is
the layer's opacity (1: on a neutrally lit, normally exposed face the made-up area looks
like the product's swatch; in a dim or warm photo, like the swatch in that light). Every
mask is clipped to the face region (`tracker.masks.face_coverage`).
Masks come from `tracker.masks`, blending from `tracker.blend`; only the rectangle each
mask covers (inside the face's region) is read and written. Per face, the union of the
products' masks is converted to CIELAB once, every product is blended into that buffer,
and the touched pixels are converted back once (`apply_products`). The inside of an open
mouth is spared by every product (`tracker.mouth`: inner-lip geometry and a colour test).

Presets live as JSON in `tracker/looks/` (package data), e.g.:

    {"name": "natural", "description": "...",
     "products": {"lips": {"color": "#c4626e", "intensity": 0.5, "finish": "gloss"}, ...}}
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass

import numpy as np

from tracker import masks as _masks
from tracker.resources import resource
from tracker.blend import (
    TintParams,
    bgr_to_lab_planes,
    lab_planes_stats,
    lab_planes_to_bgr,
    tint_lab_planes,
)
from tracker.colors import hex_to_linear, parse_hex
from tracker.lighting import face_light, linear_bgr_to_lab, opaque_shading, smooth_lightness
from tracker.mouth import guard_mask, mouth_guard

PRODUCT_KINDS = ("foundation", "blush", "eyeshadow", "eyeliner", "brows", "lips")
FINISHES = ("matte", "gloss")
AUTO_COLOR = "auto"
DEFAULT_LOOK = "natural"
_PRODUCT_FIELDS = ("color", "intensity", "finish", "wing", "size")


@dataclass(frozen=True)
class Product:
    """One makeup product.

    color : hex string ('#b3001b', 'b3001b', '#abc') or "auto" (the skin's own colour).
    intensity : 0..1, the opacity of the product's layer; 0 leaves the face untouched, 1
        covers it with the product's colour as lit in the photo (texture kept on top).
    finish : "matte" (damps shine) or "gloss" (adds a specular highlight where the
        surface is already bright; on eyeshadow it reads as shimmer).
    wing : eyeliner only: add a flick past the outer eye corner.
    size : scale of the product's area (eyeshadow height, liner and brow thickness,
        blush oval); 1 is the default shape.
    """
    color: str
    intensity: float = 1.0
    finish: str = "matte"
    wing: bool = False
    size: float = 1.0

    def __post_init__(self):
        if self.color != AUTO_COLOR:
            parse_hex(self.color)  # ValueError naming the input and the accepted formats
        _check_intensity(self.intensity, "product intensity")
        if self.finish not in FINISHES:
            raise ValueError(f"unknown finish {self.finish!r}: choose one of {', '.join(FINISHES)}")
        if not (isinstance(self.size, (int, float)) and 0.2 <= float(self.size) <= 3.0):
            raise ValueError(f"invalid size {self.size!r}: expected a number in [0.2, 3]")


@dataclass(frozen=True)
class Look:
    """A set of products (None: not applied) and a global intensity in [0, 1]."""
    name: str = "custom"
    foundation: Product | None = None
    blush: Product | None = None
    eyeshadow: Product | None = None
    eyeliner: Product | None = None
    brows: Product | None = None
    lips: Product | None = None
    intensity: float = 1.0
    description: str = ""

    def __post_init__(self):
        _check_intensity(self.intensity, "look intensity")

    def products(self) -> list[tuple[str, Product]]:
        """(kind, product) pairs in rendering order, skipping absent products."""
        return [(k, getattr(self, k)) for k in PRODUCT_KINDS if getattr(self, k) is not None]


def _check_intensity(value, what: str) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"invalid {what} {value!r}: expected a number in [0, 1]")


# ---------------------------------------------------------------------- rendering

# How each kind is layered (see tracker.blend.TintParams): gain on the fine texture below /
# above the local mean (1 keeps it in L; foundation evens it), and the width of the local
# shading (Gaussian sigma, x iod) its surface is smoothed by.
_TEXTURE = {"foundation": 0.75, "blush": 1.0, "eyeshadow": 1.0, "eyeliner": 0.5, "brows": 1.0,
            "lips": 1.0}
_SHADING_SIGMA = {"foundation": 0.06, "blush": 0.06, "eyeshadow": 0.04, "eyeliner": 0.02,
                  "brows": 0.02, "lips": 0.03}
_MATTE_SHINE = 0.8  # a matte finish damps the bright side of the texture (shine)
_GLOSS = {"lips": 0.45, "eyeshadow": 0.3}


def product_mask(face, frame_shape, kind: str, product: Product) -> _masks.Mask:
    """The soft mask one product is applied through, for one face, clipped to the face
    region (`tracker.masks.face_coverage`).

    face : (68, 2) landmarks or a `tracker.masks.FaceShape` (reused across products).
    """
    f = _masks.as_face_shape(face, frame_shape)
    return _masks.clip_to_face(_shape_mask(f, kind, product), f)


def _shape_mask(f: _masks.FaceShape, kind: str, product: Product) -> _masks.Mask:
    if kind == "eyeshadow":
        return _masks.eyeshadow_mask(f, height=0.55 * product.size)
    if kind == "eyeliner":
        return _masks.eyeliner_mask(f, thickness=product.size, wing=product.wing)
    if kind == "blush":
        return _masks.blush_mask(f, size=product.size)
    if kind == "brows":
        return _masks.brows_mask(f, thickness=product.size)
    if kind == "lips":
        return _masks.lips_mask(f)
    if kind == "foundation":
        return _masks.skin_mask(f)
    raise ValueError(f"unknown product kind {kind!r}: choose one of {', '.join(PRODUCT_KINDS)}")


def tint_params(kind: str, product: Product, stats: np.ndarray, intensity: float,
                light=(1.0, 1.0, 1.0), ref_lightness: float | None = None) -> TintParams:
    """Layer settings for a product over a surface with `lab_planes_stats` (mean L, std L,
    a, b), under the face's light (`tracker.lighting.face_light`: linear B, G, R gains).

    The layer's colour is the product's lit by that light ("auto": the surface's own mean
    colour), placed where the surface's shading is `ref_lightness`
    (`tracker.lighting.opaque_shading`; default: the mean L); intensity is its opacity.
    """
    mean_l, std_l, mean_a, mean_b = (float(v) for v in stats)
    ref = mean_l if ref_lightness is None else float(ref_lightness)
    if product.color == AUTO_COLOR:
        color = (ref, mean_a, mean_b)  # the surface's own colour: only evens its texture
    else:
        color = _lit_lab(product.color, tuple(float(v) for v in light))
    texture = _TEXTURE[kind]
    gloss = 0.0
    if product.finish == "matte":
        light_side = texture * _MATTE_SHINE
    else:
        gloss = _GLOSS.get(kind, 0.3)
        light_side = texture * 1.1
    return TintParams(color_lab=color, ref_lightness=ref, texture_dark=texture,
                      texture_light=light_side, gloss=gloss, gloss_at=0.9 * std_l,
                      gloss_width=max(1.5 * std_l, 3.0), intensity=float(intensity))


@functools.lru_cache(maxsize=256)
def _linear_color(color: str) -> tuple[float, float, float]:
    """A hex colour's linear B, G, R (cached: looked up per product and frame)."""
    return tuple(float(v) for v in hex_to_linear(color))


def _lit_lab(color: str, light: tuple) -> tuple[float, float, float]:
    """A product's Lab colour under a light (linear B, G, R gains)."""
    lin = _linear_color(color)
    return tuple(float(v) for v in linear_bgr_to_lab([c * k for c, k in zip(lin, light)]))


def apply_product(frame: np.ndarray, face, kind: str, product: Product,
                  intensity: float | None = None) -> None:
    """Apply one product to one face of `frame` IN PLACE (uint8 BGR (H, W, 3)).

    face : (68, 2) landmarks or a `tracker.masks.FaceShape` built for this frame.
    intensity : overall intensity (default: the product's own). Only the rectangle under
    the product's mask is read and written. `render` is the non-mutating entry point.
    """
    amount = product.intensity if intensity is None else float(intensity)
    apply_products(frame, face, [(kind, product, amount)])


def apply_products(frame: np.ndarray, face, products) -> None:
    """Apply several products to one face of `frame` IN PLACE, in the order given.

    products : (kind, product, intensity) triples. The union of their masks is converted
    to CIELAB once; each product takes its statistics from, and blends into, that float
    buffer (so it sees the products before it), and the pixels any product touched are
    converted back once. Pixels outside every mask (or where every weight is 0) are
    never written, nor is the inside of an open mouth (teeth, tongue, the cavity:
    `tracker.mouth`), whatever the products' masks say there.
    """
    face = _masks.as_face_shape(face, frame.shape)
    work = []
    for kind, product, amount in products:
        if amount <= 0.0:
            continue
        mask = product_mask(face, frame.shape, kind, product)
        if not mask.empty:
            work.append((kind, product, float(amount), mask))
    if not work:
        return
    x0, y0, x1, y1 = _masks.union_box(m for *_, m in work)
    view = frame[y0:y1, x0:x1]
    lab = bgr_to_lab_planes(view)
    # From the colours before any product: the mouth's inside is spared by every product.
    guard = mouth_guard(face, lab, x0, y0)
    light = light_for(frame, face, work)
    touched = np.zeros(view.shape[:2], dtype=np.uint8)
    for kind, product, amount, m in work:
        apply_layer(lab, touched, guard_mask(m, guard), x0, y0, face, kind, product, amount,
                    light)
    lab_planes_to_bgr(lab, touched, view)


def light_for(frame: np.ndarray, face: _masks.FaceShape, work) -> tuple:
    """The light on one face (`tracker.lighting.face_light`), or neutral when every product
    in `work` ((kind, product, amount, mask) quadruples) is "auto" (it is then not needed).
    The skin is foundation's mask when the work has it, else `tracker.masks.skin_mask`."""
    if all(product.color == AUTO_COLOR for _, product, _, _ in work):
        return (1.0, 1.0, 1.0)
    skin = next((m for kind, _, _, m in work if kind == "foundation"), None)
    return tuple(face_light(frame, skin if skin is not None else _masks.skin_mask(face)))


def apply_layer(lab: np.ndarray, touched: np.ndarray, mask: _masks.Mask, x0: int, y0: int,
                face: _masks.FaceShape, kind: str, product: Product, amount: float,
                light) -> None:
    """One product's layer into a face's Lab buffer (float32 (3, H, W) with its top-left at
    frame (x0, y0)) in place, through `mask` (already guarded): statistics, the surface's
    smoothed lightness, the blend. touched : uint8 (H, W), set where it changed pixels."""
    dy, dx = mask.y0 - y0, mask.x0 - x0
    stats = lab_planes_stats(lab, mask.data, dy, dx)
    smooth = smooth_lightness(lab, mask.data, dy, dx, _SHADING_SIGMA[kind] * face.iod)
    params = tint_params(kind, product, stats, amount, light, opaque_shading(smooth, mask.data))
    tint_lab_planes(lab, mask.data, params, touched, dy, dx, smooth)


def render(image_bgr: np.ndarray, faces_landmarks, look: Look | None) -> np.ndarray:
    """Render a look on every face; returns a new uint8 image, never mutates the input.

    Parameters
    ----------
    image_bgr : uint8 ndarray (H, W, 3), BGR
    faces_landmarks : list of float (68, 2) landmark arrays in frame pixels (0-based
        pixel centres), or objects with a `.landmarks` attribute (tracker Face)
    look : Look, or None for no makeup (a plain copy)

    Only each face's region (`tracker.masks.face_roi`) is processed; products are
    applied in `PRODUCT_KINDS` order with intensity = product.intensity * look.intensity.
    """
    image_bgr = np.asarray(image_bgr)
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) BGR, got {image_bgr.dtype} "
                         f"{image_bgr.shape}")
    faces = [_masks.FaceShape(getattr(f, "landmarks", f), image_bgr.shape)
             for f in faces_landmarks]
    out = image_bgr.copy()
    if look is None or look.intensity <= 0.0:
        return out
    products = [(kind, product, product.intensity * look.intensity)
                for kind, product in look.products()]
    for face in faces:
        x0, y0, x1, y1 = face.roi
        if x1 <= x0 or y1 <= y0:
            continue  # outside the frame
        apply_products(out, face, products)
    return out


# ------------------------------------------------------------------------ presets

def makeup_renderer(look: Look | None):
    """The `tracker.types.Render` of a Look, (frame, faces) -> `render(frame, faces, look)`; None: no makeup."""
    if look is None:
        return None
    return lambda frame, faces: render(frame, faces, look)


def available_looks() -> tuple[str, ...]:
    """Names of the preset looks shipped in tracker/looks/*.json, sorted."""
    folder = resource("looks")
    return tuple(sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".json")))


def load_look(name: str) -> Look:
    """Load a preset look by name; ValueError naming the valid choices if unknown."""
    choices = available_looks()
    if name not in choices:
        raise ValueError(f"unknown look {name!r}: choose one of {', '.join(choices)}")
    path = resource("looks", f"{name}.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"look file {path}: invalid JSON ({e})") from None
    return look_from_dict(data, source=str(path))


def look_from_dict(data: dict, source: str = "look") -> Look:
    """Build a Look from its JSON form; ValueError naming `source` on bad content."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object")
    products = data.get("products", {})
    unknown = sorted(set(products) - set(PRODUCT_KINDS))
    if unknown:
        raise ValueError(f"{source}: unknown product(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(PRODUCT_KINDS)}")
    kw = {}
    for kind, spec in products.items():
        bad = sorted(set(spec) - set(_PRODUCT_FIELDS))
        if bad:
            raise ValueError(f"{source}: {kind}: unknown field(s) {', '.join(bad)}; "
                             f"valid: {', '.join(_PRODUCT_FIELDS)}")
        try:
            kw[kind] = Product(**spec)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {kind}: {e}") from None
    return Look(name=str(data.get("name", "custom")), intensity=data.get("intensity", 1.0),
                description=str(data.get("description", "")), **kw)


def look_to_dict(look: Look) -> dict:
    """The JSON form of a look (inverse of `look_from_dict`)."""
    return {"name": look.name, "description": look.description, "intensity": look.intensity,
            "products": {k: dataclasses.asdict(p) for k, p in look.products()}}


_NEW_PRODUCT_INTENSITY = 0.6


def _recolor(product: Product | None, color: str | None) -> Product | None:
    if color is None:
        return product
    parse_hex(color)
    if product is None:
        return Product(color=color, intensity=_NEW_PRODUCT_INTENSITY)
    return dataclasses.replace(product, color=color)


def look_with_overrides(look: Look, lip_color: str | None = None,
                        lip_finish: str | None = None, intensity: float | None = None,
                        eyeshadow_color: str | None = None,
                        blush_color: str | None = None) -> Look:
    """A copy of `look` with some settings replaced (None: keep).

    A colour for a product the look lacks adds that product (intensity 0.6).
    intensity replaces the look's global intensity (0..1, scales every product).
    Bad colours, finishes or intensities raise ValueError naming what is accepted.
    """
    lips = _recolor(look.lips, lip_color)
    if lip_finish is not None:
        if lip_finish not in FINISHES:
            raise ValueError(f"unknown lip finish {lip_finish!r}: choose one of "
                             f"{', '.join(FINISHES)}")
        if lips is None:
            raise ValueError(f"look {look.name!r} has no lipstick; give a lip colour too")
        lips = dataclasses.replace(lips, finish=lip_finish)
    changes = dict(lips=lips, eyeshadow=_recolor(look.eyeshadow, eyeshadow_color),
                   blush=_recolor(look.blush, blush_color))
    if intensity is not None:
        _check_intensity(intensity, "intensity")
        changes["intensity"] = float(intensity)
    return dataclasses.replace(look, **changes)
