"""Accelerator configurations after the two papers' designs, with what each assumes.

The papers' architecture tables were not reachable from this project's sources (see
``shared/notes/accelerator-notes.md``): only the headline claims are verified. Everything else is an
assumption, kept as a parameter and named here.

* ICLR 2019 (binary/ternary weights): a DaDianNao-style design whose weights stream from on-chip SRAM
  through a fixed-width port [assumed 1536 bits/cycle]; the full-precision baseline uses 12-bit
  fixed point [notes: recalled, medium confidence], so the port feeds 128 multiply-accumulators; the
  binary design feeds 1536 accumulators and the ternary one 768 through the same port. 400 MHz
  [recalled], 2 gate units and an 8-stage pipeline [assumed]. Workload: the PTB char-LM of the
  authors' code (50 one-hot inputs, 1000 units). Where the 10x comes from: the same bandwidth feeds
  12x more adders; the gate phase, which does not shrink, costs the rest.
* DATE 2019 (state pruning): one accelerator run with sparse and dense states; column dataflow,
  16 PEs x 16 lanes of 12-bit weights [assumed], one gate unit [assumed]; same PTB char-LM
  workload at the papers' ">90%" zero states. Where the 5.2x comes from: work and weight fetches
  scale with the non-zero columns (input + surviving states); the gate phase and the dense input
  columns do not (Amdahl). The energy gain lies between that speedup (when always-on power
  dominates) and the ratio of weight traffic (when fetches dominate): 5.4x to 7.0x here. The paper
  reports equal speed and energy gains, which points to an always-on-dominated power profile; the
  preset assumes 1 W of always-on power (clock tree, control, leakage) [assumed].
"""
from __future__ import annotations

from .config import Accel, Tech, Workload

PTB_CHAR = Workload(input_size=50, hidden_size=1000, layers=1, steps=100)

_ICLR = dict(dataflow="column", act_bits=12, act_units=2, pipeline_depth=8, weight_bw_bits=1536,
             weight_sram_bytes=8 * 2**20, clock_hz=400e6, skip_zero_states=False)


def iclr_fp12() -> Accel:
    return Accel(name="ICLR19 full precision (12-bit)", pes=8, lanes=16, weight_bits=12, **_ICLR)


def iclr_binary() -> Accel:
    return Accel(name="ICLR19 binary", pes=96, lanes=16, weight_bits=1, **_ICLR)


def iclr_ternary() -> Accel:
    return Accel(name="ICLR19 ternary", pes=48, lanes=16, weight_bits=2, **_ICLR)


def date_accel(sparse: bool) -> Accel:
    return Accel(name=f"DATE19 {'sparse' if sparse else 'dense'} states", pes=16, lanes=16, weight_bits=12,
                 act_bits=12, act_units=1, pipeline_depth=8, weight_sram_bytes=8 * 2**20, clock_hz=400e6,
                 skip_zero_states=sparse, tech=Tech(static_mw=1000.0))


DATE_STATE_DENSITY = 0.10   # the papers' "over 90%" zero states
