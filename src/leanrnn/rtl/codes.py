"""The weight-code encodings and the accumulator width as the RTL uses them (from ``leanrnn.facts``).

The weight memories hold one code per lane: ternary 2 bits (``00`` = 0, ``01`` = +1, ``10`` = -1;
``11`` is never a code), binary 1 bit (``1`` = +1, ``0`` = -1) — ``leanrnn.facts.CODE_ENCODING``; a
``.lrnn`` file packs the same codes denser (ternary base 3), and the RTL reads them unpacked. ``int8``
is the 8-bit two's-complement weight of the multiply-accumulate baseline.
"""
from __future__ import annotations

from ..facts import CODE_ENCODING as ENCODING
from ..facts import (
    WEIGHT_BITS,
    acc_width,  # noqa: F401  (the RTL's accumulators use the one rule)
)

#: bits per weight, per mode
CODE_BITS = {"ternary": WEIGHT_BITS["ternary"], "binary": WEIGHT_BITS["binary"], "int8": 8}
MODES = tuple(CODE_BITS)


def check_mode(mode: str) -> str:
    if mode not in CODE_BITS:
        raise ValueError(f"mode={mode!r} must be one of {', '.join(MODES)}")
    return mode


def encode(code: int, mode: str) -> int:
    """The bit pattern of one weight."""
    if mode == "int8":
        if not -128 <= int(code) <= 127:
            raise ValueError(f"int8 weight {code} out of range")
        return int(code) & 0xFF
    try:
        return ENCODING[mode][int(code)]
    except KeyError:
        raise ValueError(f"{mode} weights cannot hold the code {code}") from None


def pack_word(codes, mode: str) -> int:
    """Codes of one memory word, lane 0 in the least significant bits."""
    cb = CODE_BITS[mode]
    return sum(encode(c, mode) << (cb * i) for i, c in enumerate(codes))
