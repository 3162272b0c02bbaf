"""nnlite: a minimal NumPy/Numba inference engine for small CNNs.

It knows nothing about faces: kernels, layers, a graph built from a weights file.
"""
