"""Synthesizable RTL (Amaranth) of the accelerator's datapath, checked against the fixed-point
reference by Amaranth's simulator and by Icarus Verilog, and placed and routed on a Lattice ECP5."""
from .blocks import BinaryPE, MacPE, SparseMatVec, TernaryPE, ZeroSkipScanner, scan_chunk
from .build import COMPARED_FORMATS, DEFAULT_ACCEL, fixed_point_accuracy, write_matvec, write_model_step
from .codes import CODE_BITS, ENCODING, acc_width
from .cosim import run_icarus
from .fixed import FixedFormat, FixedLayer, compare_with_float
from .fpga import PARTS, place_and_route, run_fpga
from .step import LstmStep
from .synth import format_report, report, to_verilog

__all__ = ["COMPARED_FORMATS", "DEFAULT_ACCEL", "FixedFormat", "FixedLayer", "compare_with_float",
           "fixed_point_accuracy", "write_matvec", "write_model_step", "CODE_BITS", "ENCODING", "PARTS",
           "BinaryPE", "LstmStep", "MacPE", "SparseMatVec", "TernaryPE", "ZeroSkipScanner", "acc_width", "scan_chunk",
           "format_report", "place_and_route", "report", "run_fpga", "run_icarus", "to_verilog"]
