"""Data sets as tensors. Everything here reads local files or what an installed package ships."""
from .digits import load_digits_sequences
from .pystdlib import VOCAB as PYSTDLIB_VOCAB
from .pystdlib import decode, encode, load_pystdlib

__all__ = ["load_digits_sequences", "load_pystdlib", "PYSTDLIB_VOCAB", "encode", "decode"]
