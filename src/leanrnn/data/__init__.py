"""Data sets as tensors. Everything here reads local files or what an installed package ships."""
from .digits import load_digits_sequences
from .images import load_images, read_idx
from .pystdlib import VOCAB as PYSTDLIB_VOCAB
from .pystdlib import decode, encode, load_pystdlib
from .sources import SOURCES, DataError, get_source
from .text import TextCorpus, load_text

__all__ = ["load_digits_sequences", "load_pystdlib", "load_text", "load_images", "read_idx", "TextCorpus",
           "PYSTDLIB_VOCAB", "encode", "decode", "SOURCES", "DataError", "get_source"]
