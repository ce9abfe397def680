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
        """Every field within the range the cycle model and the RTL can build, so that no NaN, negative
        count or zero-bit datapath reaches the arithmetic."""
        if self.weight_bits not in (1, 2, 4, 8, 12, 16, 32):
            raise HardwareConfigError(f"weight_bits={self.weight_bits} must be 1, 2, 4, 8, 12, 16 or 32")
        if self.dataflow not in ("column", "row"):
            raise HardwareConfigError(f"dataflow={self.dataflow!r} must be 'column' or 'row'")
        for name, lo, hi in _INT_RANGES:
            _in_range(getattr(self, name), name, lo, hi, None, "accelerator")
        if self.acc_bits is not None:
            _in_range(self.acc_bits, "acc_bits", 2, 64, None, "accelerator")
        for name, lo, hi, what in _FLOAT_RANGES:
            _in_range(getattr(self, name), name, lo, hi, what, "accelerator")
        if self.weight_bw_bits is not None:
            _in_range(self.weight_bw_bits, "weight_bw_bits", _TINY, _HUGE, "a number > 0 (or null: enough for "
                      "all PEs)", "accelerator")
        for name, lo, what in _TECH_RANGES:
            _in_range(getattr(self.tech, name), f"tech.{name}", lo, _HUGE, what, "technology")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Accel:
        """An accelerator from ``setting: value`` pairs (a YAML file's), each name and type checked."""
        if not isinstance(d, dict):
            raise HardwareConfigError(f"an accelerator config must be a mapping of setting: value lines, got "
                                      f"{type(d).__name__}; see leanrnn.hw.Accel for the names")
        d = dict(d)
        t = d.pop("tech", None)
        if t is None:
            t = {}
        if not isinstance(t, dict):
            raise HardwareConfigError(f"tech={t!r} must be a mapping of technology settings, e.g. tech: "
                                      "{lut_pj: 0.5, static_mw: 5}; see leanrnn.hw.Tech for the names")
        _check_fields(d, cls, "accelerator")
        _check_fields(t, Tech, "tech")
        return cls(tech=Tech(**t), **d).validate()


_TINY, _HUGE = 1e-300, 1e300
#: integer fields: (name, lowest, highest)
_INT_RANGES = (("pes", 1, 1 << 16), ("lanes", 1, 1 << 16), ("act_bits", 2, 32), ("scanner_width", 1, 1 << 20),
               ("act_units", 1, 1 << 20), ("pipeline_depth", 0, 1 << 20))
#: number fields: (name, lowest, highest, what it must be)
_FLOAT_RANGES = (("weight_sram_bytes", 0, _HUGE, "a number >= 0"), ("sram_bank_bytes", 1, _HUGE, "a number >= 1"),
                 ("state_sram_bytes", 0, _HUGE, "a number >= 0"),
                 ("dram_bw_bits", 0, _HUGE, "a number >= 0 (0: no off-chip path)"),
                 ("clock_hz", 1, 1e12, "a number of Hz from 1 to 1e12"))
#: technology energies: (name, lowest, what it must be); a memory read that costs nothing would make
#: every energy ratio 0 / 0
_TECH_RANGES = (("add32_pj", 0, "a number >= 0"), ("mul32_pj", 0, "a number >= 0"),
                ("sram_pj_per_bit_8kb", _TINY, "a number > 0"), ("dram_pj_per_bit", _TINY, "a number > 0"),
                ("lut_pj", 0, "a number >= 0"), ("static_mw", 0, "a number >= 0"),
                ("node_scale", _TINY, "a number > 0"))


def _in_range(v, name: str, lo: float, hi: float, what: str | None, where: str) -> None:
    """``lo <= v <= hi``, finite (a NaN fails every comparison), and whole when ``what`` is None (an
    integer field, named with its bounds)."""
    try:
        ok = math.isfinite(float(v)) and lo <= v <= hi and (what is not None or float(v).is_integer())
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise HardwareConfigError(f"{name}={v!r} must be {what or f'an integer from {lo} to {hi:,}'}; fix the "
                                  f"{where} settings (see leanrnn.hw.{'Tech' if where == 'technology' else 'Accel'})")


def _yaml_number(v: str, t) -> str | None:
    """``v`` written so that YAML 1.1 reads it as a number of type ``t`` (a float needs a dot and a
    signed exponent: ``1.0e-300``, not ``1e-300``), or None if it is no such number."""
    try:
        x = int(v) if t is int else float(v)
    except ValueError:
        return None
    if t is int:
        return str(x)
    if not math.isfinite(x):
        return None
    m, _, e = repr(x).partition("e")
    return f"{m if '.' in m else m + '.0'}e{e if e[0] in '+-' else '+' + e}" if e else m


def _check_fields(d: dict, cls, where: str) -> None:
    """Known names and the field's type: a YAML ``pes: many`` or ``clock_hz: 1e-300`` (which YAML reads
    as text) names its field and the fix."""
    import typing
    odd = [k for k in d if not isinstance(k, str)]
    if odd:
        raise HardwareConfigError(f"{where} setting name {odd[0]!r} is not a name; write names such as pes, "
                                  f"lanes (see leanrnn.hw.{cls.__name__})")
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise HardwareConfigError(f"unknown {where} setting(s) {', '.join(unknown)}: "
                                  f"see leanrnn.hw.{cls.__name__} for the names")
    hints = typing.get_type_hints(cls)
    for name, v in d.items():
        args = typing.get_args(hints[name])
        if v is None and type(None) in args:
            continue
        t = next((a for a in args if a is not type(None)), hints[name])
        want = {int: (int, "an integer"), float: ((int, float), "a number"), bool: (bool, "true or false"),
                str: (str, "text")}.get(t)
        if want is None or (isinstance(v, want[0]) and (t is bool or not isinstance(v, bool))):
            continue
        fixed = _yaml_number(v, t) if isinstance(v, str) else None
        hint = f": YAML reads {v!r} as text, write {name}: {fixed}" if fixed else ""
        raise HardwareConfigError(f"{where} setting {name}={v!r} must be {want[1]}{hint}; fix the file "
                                  f"(see leanrnn.hw.{cls.__name__})")


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
