"""Numba chunk-gradient kernels (installed as ``mpigc.kernels``)."""
