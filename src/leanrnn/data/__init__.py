"""Data sets as tensors. Everything here reads local files or what an installed package ships."""
from .digits import load_digits_sequences
from .images import load_images, read_idx
from .pystdlib import VOCAB as PYSTDLIB_VOCAB
from .pystdlib import decode, encode, load_pystdlib
from .sources import SOURCES, DataError, get_source
from .task_data import check_for_task, load_for_task
from .text import TextCorpus, is_text, load_text

__all__ = [
           "PYSTDLIB_VOCAB",
           "SOURCES",
           "DataError",
           "TextCorpus",
           "check_for_task",
           "decode",
           "encode",
           "get_source",
           "is_text",
           "load_digits_sequences",
           "load_for_task",
           "load_images",
           "load_pystdlib",
           "load_text",
           "read_idx",
]
