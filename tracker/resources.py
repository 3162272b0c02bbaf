"""Where the shipped files are: landmark weights, detector files, looks, the sample clip.

Every default path of the package comes from `resource`, so a source
checkout, an editable install and an installed wheel all find the same files:

- ``resource("weights", NAME)``: an installed wheel carries the repository's
  top-level ``weights/`` folder inside the package as ``tracker/weights/``
  (setup.py maps it there at build time). In a source checkout (or an
  editable install) there is no ``tracker/weights/``, and the top-level
  ``weights/`` next to ``setup.py`` is used instead.
- anything else (``"looks"``, ``"data"``) lives inside the package in both cases.

Nothing is downloaded: a missing file gives a path that does not exist, and
the caller reports it by name.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent


def weights_dir() -> Path:
    """The folder with the weights and detector files (see the module docstring)."""
    packaged = PACKAGE_DIR / "weights"
    if packaged.is_dir():
        return packaged
    if (_CHECKOUT / "setup.py").is_file() and (_CHECKOUT / "weights").is_dir():
        return _CHECKOUT / "weights"
    return packaged


def resource(*parts: str) -> Path:
    """Absolute path of a shipped file or folder, e.g. ``resource("weights", "demo.h5")``.

    parts : path components below the package, the first one "weights", "looks" or "data".
    The path may not exist (e.g. weights not trained yet); callers check and name it.
    """
    if not parts:
        raise ValueError("resource() needs a path, e.g. resource('weights', 'demo.h5')")
    if parts[0] == "weights":
        return weights_dir().joinpath(*parts[1:])
    return PACKAGE_DIR.joinpath(*parts)


def shipped_weights(weights: str | os.PathLike) -> Path:
    """A weights path as given, or for a shipped model's bare name ("demo", "lite", "full") its file.

    A name is one path component without a suffix that is not an existing file or
    folder; it resolves to ``resource("weights", NAME + ".h5")`` wherever the package
    is installed. Anything else is returned as a Path (callers check it exists).
    """
    path = Path(weights)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        shipped = resource("weights", f"{path.name}.h5")
        if shipped.is_file():
            return shipped
    return path


SAMPLE = resource("data", "sample.mp4")  # the bundled 640x480 clip: the CLIs' default input


def shipped_model_names() -> list[str]:
    """Names of the shipped landmark models (the .h5 files in the weights folder but the detector's)."""
    return [p.stem for p in sorted(weights_dir().glob("*.h5")) if p.stem != "detector"]
