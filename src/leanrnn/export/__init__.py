"""The packed 1-/2-bit model format (``format``, torch-free) and the exporter from trained runs
(``exporter``: importing it needs no torch, exporting a run does)."""
from .exporter import export_run, model_to_lrnn, summary
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

__all__ = ["export_run", "model_to_lrnn", "summary", "ModelFormatError", "check_header", "pack_codes",
           "parse_header", "read_lrnn", "unpack_codes", "validate", "write_lrnn"]
