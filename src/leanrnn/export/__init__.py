"""The packed 1-/2-bit model format (``format``, torch-free) and the exporter from trained runs
(``exporter``, needs torch)."""
from .format import (
                     ModelFormatError,
                     check_header,
                     pack_codes,
                     parse_header,
                     read_lrnn,
                     unpack_codes,
                     validate,
                     write_lrnn,
)

__all__ = ["ModelFormatError", "check_header", "pack_codes", "parse_header", "read_lrnn", "unpack_codes",
           "validate", "write_lrnn"]
