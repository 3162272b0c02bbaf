"""Tiny two-stage face landmark tracker and makeup try-on on NumPy + Numba."""
from setuptools import find_packages, setup

setup(
    name="facelite",
    version="0.1.0",
    description=__doc__,
    packages=find_packages(include=["nnlite", "nnlite.*", "tracker", "tracker.*"]),
    python_requires=">=3.9",
    install_requires=["numpy", "numba", "opencv-python", "h5py"],
    extras_require={
        "test": ["pytest"],
        "train": ["torch==2.13.0"],
        "bench": ["onnxruntime", "onnx", "threadpoolctl", "torch==2.13.0"],
    },
)
