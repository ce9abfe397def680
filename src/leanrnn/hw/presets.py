"""The two papers' accelerators as parameter sets in which every value is sourced or a free assumption.

Each parameter is either

* ``Sourced(value, source, tag)``: ``source`` is a key of ``SOURCES`` (full entries, with what each
  source says, in ``docs/accelerator.md``) and ``tag`` how sure the value is: ``V`` verified in the
  named public source, ``R`` recalled from it and not re-checked, ``D`` derived by arithmetic from
  sourced facts, ``M`` measured in this repository; or
* ``Assumed(value, sweep)``: no source. ``value`` is a default picked without reference to the
  papers' ratios (the library's own default where it has one) and ``sweep`` the values
  ``benchmarks/hw_papers.py`` sweeps it over, so every ratio is reported as a band.

``Preset.derived`` names the accelerator fields computed from the parameters, with the rule.

ICLR 2019 (binary/ternary weights, "up to 12x memory saving and 10x inference speedup" over a
full-precision design). Mechanism ``scaling="port"``: a weight-bandwidth-bound, DaDianNao-style design
whose weight port feeds ``weight_bw_bits / weight_bits`` accumulators, so binary weights feed 12x as
many as 12-bit ones and only the gate phase does not shrink. Mechanism ``"area"``: the same PE area
buys ``pe_area_ratio`` times as many add/subtract PEs as 12-bit multiply-accumulate PEs.

DATE 2019 (state pruning, "up to 5.2x" speed and energy, sparse vs dense states on one accelerator):
column dataflow skips the weight columns of zero states; the input columns and the gate phase do not
shrink (``amdahl_bound``). The workload is assumed to be the ICLR char-level PTB model (same
authors); its hidden size is swept.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import Accel, Tech, Workload

SOURCES = {
    "horowitz14": "M. Horowitz, Computing's energy problem (and what we can do about it), ISSCC 2014",
    "iclr19": "A. Ardakani et al., Learning Recurrent Binary/Ternary Weights, ICLR 2019 (OpenReview HkNGYjR9FX)",
    "iclr19-code": "the ICLR 2019 authors' code, github.com/arashardakani/Learning-Recurrent-Binary-Ternary-Weights",
    "date19": "A. Ardakani, Z. Ji, W. J. Gross, Learning to Skip Ineffectual Recurrent Computations in LSTMs, "
              "DATE 2019",
    "dadiannao": "Y. Chen et al., DaDianNao: A Machine-Learning Supercomputer, MICRO 2014",
    "synthesis": "this repository's `leanrnn rtl report` (docs/synthesis.md)",
}


@dataclass(frozen=True)
class Sourced:
    value: Any
    source: str
    tag: str          # V verified, R recalled, D derived, M measured
    note: str = ""


@dataclass(frozen=True)
class Assumed:
    value: Any
    sweep: tuple
    note: str = ""


Param = Sourced | Assumed

KiB, MiB = 2**10, 2**20

TECH = {
    "add32_pj": Sourced(0.1, "horowitz14", "V", "32-bit integer add, 45 nm"),
    "mul32_pj": Sourced(3.1, "horowitz14", "V", "32-bit integer multiply, 45 nm"),
    "sram_pj_per_bit_8kb": Sourced(0.16, "horowitz14", "V", "10 pJ per 64-bit read of an 8 KB SRAM"),
    "dram_pj_per_bit": Sourced(20.0, "horowitz14", "V", "1.3 nJ per 64-bit access; unused with weights on chip"),
    "node_scale": Sourced(1.0, "horowitz14", "V", "Horowitz's own 45 nm; cancels in every ratio"),
    "lut_pj": Assumed(0.5, (0.1, 0.5, 2.6), "2.6 pJ = a 16-bit read at the 8 KB SRAM figure"),
    "static_mw": Assumed(5.0, (0.0, 5.0, 50.0, 500.0), "always-on power; no source for either design"),
}

_ARRAY = {  # free assumptions about the array, shared by both presets
    "act_units": Assumed(4, (1, 4, 16), "gate units, one hidden entry per cycle each"),
    "pipeline_depth": Assumed(8, (4, 8, 16)),
    "skip_zero_inputs": Assumed(False, (False, True), "skip the zero columns of the one-hot input too"),
    "scanner_overlap": Assumed(True, (True, False), "mask scan hidden behind the previous gate phase"),
    "scanner_width": Assumed(64, (16, 64), "mask bits scanned per cycle (matters without overlap)"),
    "sram_bank_bytes": Assumed(64 * KiB, (8 * KiB, 64 * KiB, 1 * MiB), "SRAM energy is that of one bank"),
}

_DERIVED = {
    "name": "label",
    "acc_bits": "act_bits + weight_bits (1 for binary/ternary) + ceil(log2(fan-in)): no overflow",
    "state_sram_bytes": "holds the input and state vectors: (input_size + hidden_size) * act_bits / 8",
    "dram_bw_bits": "0: the weights stay on chip",
    "steps": "100: per-step ratios do not depend on it",
    "layers": "1, as in the papers' char-level PTB model",
    "gates": "4 (LSTM)",
}


@dataclass(frozen=True)
class Preset:
    name: str
    params: dict[str, Param]
    build: Callable[[dict], tuple[Workload, dict[str, Accel]]]
    derived: dict[str, str] = field(default_factory=dict)

    def defaults(self) -> dict:
        return {k: p.value for k, p in self.params.items()}

    def free(self) -> dict[str, Assumed]:
        return {k: p for k, p in self.params.items() if isinstance(p, Assumed)}

    def configs(self, values: dict | None = None) -> tuple[Workload, dict[str, Accel]]:
        """The workload and the named accelerators at ``values`` (defaults where not given)."""
        v = self.defaults()
        unknown = sorted(set(values or {}) - set(v))
        if unknown:
            raise KeyError(f"{self.name} has no parameter(s) {', '.join(unknown)}; it has {', '.join(v)}")
        v.update(values or {})
        return self.build(v)

    def grid(self, skip: tuple[str, ...] = ()) -> Iterator[dict]:
        """Every combination of the free assumptions' sweeps (``skip``: left at their defaults)."""
        names = [k for k in self.free() if k not in skip]
        for combo in itertools.product(*(self.params[k].sweep for k in names)):
            yield dict(zip(names, combo))


def _tech(v: dict) -> Tech:
    return Tech(**{k: v[k] for k in TECH})


def _common(v: dict, wl: Workload) -> dict:
    same = ("act_bits", "skip_zero_inputs", "scanner_width", "scanner_overlap", "act_units", "pipeline_depth",
            "weight_sram_bytes", "sram_bank_bytes", "clock_hz")
    return {**{k: v[k] for k in same}, "acc_bits": None, "dram_bw_bits": 0.0, "tech": _tech(v),
            "state_sram_bytes": (wl.input_size + wl.hidden_size) * v["act_bits"] / 8}


def _iclr(v: dict) -> tuple[Workload, dict[str, Accel]]:
    wl = Workload(v["input_size"], v["hidden_size"], layers=1, steps=100)
    fp_macs = v["weight_bw_bits"] // v["fp_bits"]

    def accel(label: str, bits: int) -> Accel:
        if bits == v["fp_bits"]:
            macs = fp_macs
        elif v["scaling"] == "port":
            macs = v["weight_bw_bits"] // bits
        else:
            macs = int(fp_macs * v["pe_area_ratio"])
        return Accel(name=f"ICLR19 {label}", pes=macs, lanes=1, dataflow="column", weight_bits=bits,
                     skip_zero_states=False, weight_bw_bits=v["weight_bw_bits"], **_common(v, wl))

    return wl, {"fp": accel(f"full precision ({v['fp_bits']}-bit)", v["fp_bits"]),
                "binary": accel("binary", 1), "ternary": accel("ternary", 2)}


ICLR19 = Preset("ICLR 2019", {
    "input_size": Sourced(50, "iclr19-code", "V", "PTB_Char/PTB.py: n_inputs = 50"),
    "hidden_size": Sourced(1000, "iclr19-code", "V", "PTB_Char/PTB.py: n_units = 1000"),
    "fp_bits": Sourced(12, "iclr19", "R", "12-bit fixed-point baseline; the 12x claim itself implies 12 bits"),
    "act_bits": Sourced(12, "iclr19", "R", "12-bit fixed-point activations"),
    "clock_hz": Sourced(400e6, "iclr19", "R", "about 400 MHz, 65 nm; cancels in the speed ratio"),
    "weight_sram_bytes": Sourced(36 * MiB, "dadiannao", "R", "DaDianNao keeps every weight on chip (36 MB eDRAM)"),
    "scaling": Assumed("port", ("port", "area"), "what the binary design spends its savings on"),
    "weight_bw_bits": Assumed(4096, (1024, 2048, 4096, 8192),
                              "weight port bits/cycle; DaDianNao's tile reads 16x16 16-bit weights a cycle [R]"),
    "pe_area_ratio": Assumed(7.4, (5.4, 7.4, 9.5), "scaling='area' only: 8-/16-bit MAC over binary PE cells "
                                                    "(930 and 1642 over 173), docs/synthesis.md [M]; 7.4 between them"),
    **_ARRAY, **TECH,
}, _iclr, {**_DERIVED, "pes": "weight_bw_bits // weight_bits (port) or fp pes * pe_area_ratio (area)",
           "lanes": "1: in column dataflow only pes x lanes matters", "dataflow": "column: weights streamed "
           "to an array accumulating all outputs, DaDianNao-style (iclr19 [R])",
           "weight_bits": "fp_bits, 1 (binary) or 2 (ternary codes)", "skip_zero_states": "False: no state pruning "
           "in that paper"})


def _date(v: dict) -> tuple[Workload, dict[str, Accel]]:
    wl = Workload(v["input_size"], v["hidden_size"], layers=1, steps=100)
    kw = {k: v[k] for k in ("pes", "lanes", "dataflow", "weight_bits")} | {"weight_bw_bits": None, **_common(v, wl)}
    return wl, {"dense": Accel(name="DATE19 dense states", skip_zero_states=False, **kw),
                "sparse": Accel(name="DATE19 sparse states", skip_zero_states=True, **kw)}


DATE19 = Preset("DATE 2019", {
    "input_size": Sourced(50, "iclr19-code", "V", "char-level PTB: 50 one-hot inputs"),
    "state_density": Sourced(0.10, "date19", "V", "'over 90%' of the states pruned"),
    "hidden_size": Assumed(1000, (500, 1000, 2000), "the ICLR char-PTB size; DATE's own model size unknown"),
    "weight_bits": Assumed(12, (8, 12, 16), "the group's ICLR baseline width"),
    "act_bits": Assumed(12, (8, 12, 16)),
    "pes": Assumed(16, (4, 16, 64)),
    "lanes": Assumed(16, (8, 16), "accumulators per PE"),
    "dataflow": Assumed("column", ("column", "row"), "row: inputs split over PEs, pays load imbalance"),
    "weight_sram_bytes": Assumed(36 * MiB, (36 * MiB,), "weights on chip; off chip the weight traffic would "
                                                       "dominate energy (the upper limit of the energy band)"),
    "clock_hz": Assumed(400e6, (400e6,), "enters energy only through static_mw / clock_hz, swept via static_mw"),
    **_ARRAY, **TECH,
}, _date, {**_DERIVED, "skip_zero_states": "True (sparse) / False (dense): the claim's two modes",
           "weight_bw_bits": "None: a port wide enough for every PE"})

PRESETS = {"iclr19": ICLR19, "date19": DATE19}
