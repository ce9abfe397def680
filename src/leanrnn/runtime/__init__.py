"""Torch-free CPU inference of exported ``.lrnn`` models (numpy + numba)."""
from ..export.format import ModelFormatError
from .bench import bench_model
from .model import Model, State

__all__ = ["Model", "ModelFormatError", "State", "bench_model"]
