"""Parameters of an LSTM accelerator, its technology, and the workload it runs.

Energy defaults (``Tech``) are Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, 45 nm, 0.9 V, as listed in ``docs/accelerator.md``: 32-bit integer add 0.1 pJ and multiply
3.1 pJ; an 8 KB SRAM read 10 pJ per 64 bits (0.16 pJ/bit); DRAM 1.3-2.6 nJ per 64 bits (20 pJ/bit,
the low end). Scaling rules: adders scale with width, array multipliers with the product of the
operand widths, SRAM energy per bit with the square root of capacity (Horowitz's 8 KB and 1 MB points
differ by 10x for 128x the capacity, about sqrt(128) = 11.3x). ``node_scale`` multiplies every energy
(E ~ C V^2); it cancels in every ratio of two configurations on one node. ``lut_pj`` and
``static_mw`` have no source: they are free assumptions, swept wherever a ratio depends on them
(``leanrnn.hw.presets``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path


class HardwareConfigError(ValueError):
    """An impossible or inconsistent accelerator configuration; the message names the fix."""


@dataclass
class Tech:
    name: str = "45nm (Horowitz ISSCC 2014)"
    add32_pj: float = 0.1             # 32-bit integer add (Horowitz)
    mul32_pj: float = 3.1             # 32x32-bit integer multiply (Horowitz)
    sram_pj_per_bit_8kb: float = 0.16  # 10 pJ per 64-bit read of an 8 KB SRAM (Horowitz)
    dram_pj_per_bit: float = 20.0     # 1.3 nJ per 64-bit DRAM access (Horowitz, low end)
    lut_pj: float = 0.5               # one sigmoid/tanh table lookup: free assumption
    static_mw: float = 5.0            # always-on power (leakage, clock tree, control): free assumption
    node_scale: float = 1.0           # 1.0 = Horowitz's own 45 nm / 0.9 V

    def add_pj(self, bits: int) -> float:
        return self.node_scale * self.add32_pj * bits / 32

    def mul_pj(self, a_bits: int, b_bits: int) -> float:
        return self.node_scale * self.mul32_pj * (a_bits * b_bits) / (32 * 32)

    def sram_pj_per_bit(self, capacity_bytes: float) -> float:
        return self.node_scale * self.sram_pj_per_bit_8kb * math.sqrt(max(capacity_bytes, 8192) / 8192)


@dataclass
class Accel:
    name: str = "accelerator"
    pes: int = 16                   # processing elements
    lanes: int = 16                 # accumulators (output rows) per PE
    dataflow: str = "column"        # column: broadcast one input/state entry to all PEs; row: split inputs
    weight_bits: int = 2            # 32, 16, 12, 8, 2 (ternary), 1 (binary)
    act_bits: int = 16              # state / activation width
    acc_bits: int | None = None      # accumulator width (None: act + weight + log2(fan-in))
    skip_zero_states: bool = True   # fetch and process only columns of non-zero state entries
    skip_zero_inputs: bool = False  # the same for the layer input (one-hot or pruned inputs)
    scanner_width: int = 64         # mask bits the zero-skip controller scans per cycle
    scanner_overlap: bool = True    # scanning hides behind the previous step's gate phase
    act_units: int = 4              # gate units, one hidden entry per cycle each
    pipeline_depth: int = 8
    weight_sram_bytes: float = 2 * 2**20
    sram_bank_bytes: float = 64 * 2**10  # SRAM energy per bit is that of one bank of this size
    state_sram_bytes: float = 64 * 2**10
    weight_bw_bits: float | None = None      # on-chip weight port bits/cycle (None: enough for all PEs)
    dram_bw_bits: float = 0.0       # off-chip bits/cycle (0: no off-chip path)
    clock_hz: float = 400e6
    tech: Tech = field(default_factory=Tech)

    @property
    def macs(self) -> int:
        return self.pes * self.lanes

    def validate(self) -> Accel:
        if self.pes < 1 or self.lanes < 1:
            raise HardwareConfigError(f"pes={self.pes} and lanes={self.lanes} must be >= 1")
        if self.weight_bits not in (1, 2, 4, 8, 12, 16, 32):
            raise HardwareConfigError(f"weight_bits={self.weight_bits} must be 1, 2, 4, 8, 12, 16 or 32")
        if self.dataflow not in ("column", "row"):
            raise HardwareConfigError(f"dataflow={self.dataflow!r} must be 'column' or 'row'")
        if self.act_units < 1 or self.scanner_width < 1 or self.clock_hz <= 0:
            raise HardwareConfigError("act_units, scanner_width and clock_hz must be positive")
        if self.weight_bw_bits is not None and self.weight_bw_bits <= 0:
            raise HardwareConfigError("weight_bw_bits must be positive")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Accel:
        d = dict(d)
        t = dict(d.pop("tech", None) or {})
        for where, keys, known in (("accelerator", d, cls), ("tech", t, Tech)):
            unknown = sorted(set(keys) - {f.name for f in dataclasses.fields(known)})
            if unknown:
                raise HardwareConfigError(f"unknown {where} setting(s) {', '.join(unknown)}: "
                                          f"see leanrnn.hw.{known.__name__} for the names")
        return cls(tech=Tech(**t), **d).validate()


def load_accel(path: str | Path) -> Accel:
    import yaml
    p = Path(path)
    if not p.exists():
        raise HardwareConfigError(f"accelerator config {p} does not exist")
    return Accel.from_dict(yaml.safe_load(p.read_text()) or {})


@dataclass
class Workload:
    """One LSTM layer stack: input size ``X``, hidden ``H`` (per layer), ``layers``, ``steps``."""
    input_size: int
    hidden_size: int
    layers: int = 1
    steps: int = 100
    gates: int = 4

    def layer_input(self, k: int) -> int:
        return self.input_size if k == 0 else self.hidden_size

    def weight_count(self) -> int:
        return sum(self.gates * self.hidden_size * (self.layer_input(k) + self.hidden_size) for k in range(self.layers))
