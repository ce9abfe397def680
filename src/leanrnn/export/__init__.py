"""The packed 1-bit / base-3 model format (``format``, torch-free) and the exporter from trained runs
(``exporter``: importing it needs no torch, exporting a run does)."""
from .exporter import ExportError, export_run, model_to_lrnn, summary
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

__all__ = ["ExportError", "export_run", "model_to_lrnn", "summary", "ModelFormatError", "check_header", "pack_codes",
           "parse_header", "read_lrnn", "unpack_codes", "validate", "write_lrnn"]
