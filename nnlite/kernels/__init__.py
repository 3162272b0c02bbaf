"""Numba kernels, one family per module, each with its NumPy reference beside it."""
