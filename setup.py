"""Tiny two-stage face landmark tracker and makeup try-on on NumPy + Numba."""
from setuptools import find_packages, setup

setup(
    name="facelite",
    version="0.1.0",
    description=__doc__,
    # The repository's top-level weights/ folder is shipped inside the package as
    # tracker/weights/ (a data-only package mapped from weights/ at build time);
    # tracker.resources finds it there when installed, and at weights/ in a checkout.
    packages=find_packages(include=["nnlite", "nnlite.*", "tracker", "tracker.*"]) + ["tracker.weights"],
    package_dir={"tracker.weights": "weights"},
    package_data={
        "tracker": ["looks/*.json", "data/*.mp4", "data/*.md"],
        "tracker.weights": ["*.h5", "*.xml", "*.json", "*.md"],
        "tracker.web": ["static/*.html", "static/*.css", "static/*.js"],  # the browser page
    },
    zip_safe=False,  # weights, cascade and clip are opened as plain files (h5py, OpenCV)
    python_requires=">=3.10",  # dataclass(slots=True)
    install_requires=["numpy", "numba", "opencv-python", "h5py"],
    extras_require={
        # selenium drives Debian's chromium in tests/test_web_browser.py; setuptools >= 70.1 builds
        # wheels by itself (no `wheel` package, no network): the packaging tests build one offline,
        # also in a fresh venv (whose setuptools is older)
        "test": ["pytest", "selenium", "setuptools>=70.1"],
        # python -m tracker.web: the ASGI app, its server, and WebSockets (server and test client)
        "web": ["starlette", "uvicorn", "websockets"],
        # python -m tracker.batch --ray: the same per-file job as Ray tasks (a local Ray or a cluster)
        "ray": ["ray"],
        "train": ["torch==2.13.0"],
        "bench": ["onnxruntime", "onnx", "threadpoolctl", "torch==2.13.0"],
    },
)
