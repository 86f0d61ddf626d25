"""Benchmarks: ``mpigc bench kernels | scaling | stragglers``."""
