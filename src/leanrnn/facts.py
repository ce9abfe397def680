"""Facts that several layers share, in one torch-free place (the runtime imports it too).

Weight modes and their storage width, the task names, the bit patterns of the packed weight codes and
the accumulator width: ``quant`` quantizes with them, ``train`` counts memory with them, ``export``
packs with them, the runtime, ``hw`` and ``rtl`` read them back.
"""
from __future__ import annotations

import math

WEIGHT_MODES = ("fp", "binary", "ternary")
WEIGHT_BITS = {"fp": 32, "binary": 1, "ternary": 2}   # bits of one weight's code (fp: float32)
STORED_BITS = {"fp": 32, "binary": 1, "ternary": 8 / 5}   # bits per weight in a .lrnn file (ternary: 5 a byte)
TASKS = ("char-lm", "word-lm", "classify")
METRIC = {"char-lm": "bpc", "word-lm": "perplexity", "classify": "accuracy"}

# Codes as bit patterns, code value -> pattern: ternary 2 bits (0b11 is never a code), binary 1 bit. The
# RTL's weight memories hold these; a .lrnn file packs ternary codes as base-3 digits, five to a byte.
CODE_ENCODING = {"ternary": {0: 0b00, +1: 0b01, -1: 0b10}, "binary": {+1: 0b1, -1: 0b0}}


def acc_width(act_bits: int, weight_bits: int, fan_in: int) -> int:
    """Bits that hold any sum of ``fan_in`` products of an ``act_bits`` state and a weight of
    ``weight_bits`` without overflow: ``|sum| <= fan_in * 2**(act_bits - 1) * 2**(w - 1)`` plus a sign
    bit, where ``w = 1`` for binary/ternary codes (a code is -1, 0 or +1)."""
    w = 1 if weight_bits <= 2 else weight_bits
    return act_bits + w + math.ceil(math.log2(max(fan_in, 2)))
