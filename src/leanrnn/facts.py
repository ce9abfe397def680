"""Facts that several layers share, in one torch-free place (the runtime imports it too).

Weight modes and their storage width, the task names, and the 2-bit code of a ternary weight:
``quant`` quantizes with them, ``train`` counts memory with them, ``export`` packs with them, the
runtime and ``hw``/``rtl`` read them back.
"""
from __future__ import annotations

WEIGHT_MODES = ("fp", "binary", "ternary")
WEIGHT_BITS = {"fp": 32, "binary": 1, "ternary": 2}   # bits stored per weight (fp: float32)
TASKS = ("char-lm", "word-lm", "classify")
METRIC = {"char-lm": "bpc", "word-lm": "perplexity", "classify": "accuracy"}

# Packed codes: binary 1 bit (1 = +a, 0 = -a); ternary 2 bits, one of these per weight.
TERNARY_CODE = {0: 0b00, +1: 0b01, -1: 0b11}          # 0b10 never appears in a valid file
