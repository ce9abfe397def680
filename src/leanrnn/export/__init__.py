"""The packed 1-/2-bit model format (``format``, torch-free) and the exporter from trained runs
(``exporter``, needs torch)."""
from .format import ModelFormatError, pack_codes, read_lrnn, unpack_codes, write_lrnn

__all__ = ["ModelFormatError", "pack_codes", "unpack_codes", "read_lrnn", "write_lrnn"]
