"""Synthesizable RTL (Amaranth) of the accelerator's datapath, checked against the software model."""
from .blocks import BinaryPE, MacPE, SparseMatVec, TernaryPE, ZeroSkipScanner

__all__ = ["TernaryPE", "BinaryPE", "MacPE", "ZeroSkipScanner", "SparseMatVec"]
