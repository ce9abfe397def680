"""Cycles, energy and memory of one LSTM accelerator running a workload.

Dataflow of one layer's time step (the column-skipping scheme of DeltaRNN/EdgeDRNN; the sources are
in ``docs/accelerator.md``):

1. **Matrix-vector phase.** ``W_x x_t`` and ``W_h h_{t-1}`` as one product over ``K_t`` input
   columns. Column dataflow: each cycle one input/state entry is broadcast to all ``pes x lanes``
   accumulators, so a column of ``G = 4H`` rows takes ``ceil(G / (pes*lanes))`` cycles and skipping a
   zero entry skips its whole column with perfect load balance. Row dataflow: the inputs are split
   into ``pes`` slices and the slowest PE (most non-zero entries in its slice) sets the pace: the
   load-imbalance cost. Weight fetch may bound the phase instead: ``G * K_t * weight_bits`` bits
   through the weight port (and the DRAM link when the weights do not fit on chip).
2. **Zero-skip controller.** Scans the state mask, ``scanner_width`` bits a cycle; hidden behind the
   previous gate phase when ``scanner_overlap``.
3. **Gate phase.** ``act_units`` gate units, each finishing one hidden entry per cycle (its four
   scaled gate sums, five sigmoid/tanh lookups, three products, the pruning compare), plus a
   pipeline fill.

    cycles_t = max(C_mv(K_t), G K_t b_w / BW) + ceil(H / act_units) + pipeline_depth + [scan]
    energy_t = G K_t e_op + G K_t b_w e_wbit + (K_t + H) b_a e_sbit + e_gates + P_static cycles_t / f

Only the matrix-vector phase shrinks when zeros are skipped, and at most in proportion to the columns
kept: ``amdahl_bound`` is that limit. Energy is a dynamic part plus always-on power times time, so
the energy gain of skipping lies between the dynamic-energy ratio (``static_mw = 0``) and the cycle
ratio (always-on power dominating), whatever the parameters.

Two modes: ``analytic`` takes densities of non-zero inputs and states; ``simulate`` walks a whole
sequence with the real per-step masks of a trained model. On dense inputs they agree exactly.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..facts import acc_width
from .config import Accel, HardwareConfigError, Workload


@dataclass
class Report:
    accel: str
    steps: int
    cycles: float                  # total over the sequence (all layers)
    mv_cycles: float
    gate_cycles: float
    clock_hz: float
    dense_ops: float               # 2 * G * (X + H) per layer per step: dense-equivalent operations
    energy_pj: dict = field(default_factory=dict)   # compute, weight_sram, weight_dram, state, gates, static
    weight_bits: int = 0
    weights_on_chip: bool = True
    state_density: float = 1.0

    @property
    def cycles_per_step(self) -> float:
        return self.cycles / self.steps

    @property
    def latency_s(self) -> float:
        """Seconds per time step (all layers)."""
        return self.cycles_per_step / self.clock_hz

    @property
    def gops(self) -> float:
        return self.dense_ops / (self.cycles / self.clock_hz) / 1e9

    @property
    def energy_per_step_pj(self) -> float:
        return sum(self.energy_pj.values()) / self.steps

    def as_dict(self) -> dict:
        return {"accel": self.accel, "cycles_per_step": self.cycles_per_step, "latency_us": self.latency_s * 1e6,
                "gops_dense_equivalent": self.gops, "energy_nj_per_step": self.energy_per_step_pj / 1e3,
                "energy_breakdown_nj_per_step": {k: v / self.steps / 1e3 for k, v in self.energy_pj.items()},
                "weight_bytes": self.weight_bits / 8, "weights_on_chip": self.weights_on_chip,
                "state_density": self.state_density}


def acc_bits(a: Accel, fan_in: int) -> int:
    if a.acc_bits:
        return a.acc_bits
    return acc_width(a.act_bits, a.weight_bits, fan_in)


def _check_memory(a: Accel, wl: Workload) -> bool:
    bits = wl.weight_count() * a.weight_bits
    on_chip = bits <= a.weight_sram_bytes * 8
    if not on_chip and a.dram_bw_bits <= 0:
        raise HardwareConfigError(
            f"the weights need {bits / 8 / 2**20:.2f} MiB but weight_sram_bytes is {a.weight_sram_bytes / 2**20:.2f} "
            "MiB and there is no off-chip path: raise weight_sram_bytes or set dram_bw_bits > 0")
    return on_chip


def matvec_cycles(a: Accel, rows: int, columns: float) -> float:
    """Cycles of the column-dataflow product over ``columns`` input columns of ``rows`` rows, compute
    bound: each column takes ``ceil(rows / (pes * lanes))`` cycles (the RTL block adds a fixed latency)."""
    return math.ceil(rows / a.macs) * columns


def expected_max_binomial(n: int, p: float, k: int) -> float:
    """E[max of k i.i.d. Binomial(n, p)] (normal approximation, exact at p in {0, 1})."""
    if p <= 0 or p >= 1 or k <= 1:
        return n * p
    sd = math.sqrt(n * p * (1 - p))
    return min(float(n), n * p + sd * math.sqrt(2 * math.log(k)))


class _Phase:
    """Per-layer constants of one step's cost."""

    def __init__(self, a: Accel, wl: Workload, k: int, on_chip: bool):
        self.a, self.X, self.H = a, wl.layer_input(k), wl.hidden_size
        self.G = wl.gates * self.H
        self.on_chip = on_chip
        self.acc = acc_bits(a, self.X + self.H)
        bw = a.weight_bw_bits if a.weight_bw_bits else a.macs * a.weight_bits
        self.bw = bw if on_chip else min(bw, a.dram_bw_bits)
        self.rows = math.ceil(self.G / a.macs)
        # each gate unit finishes one hidden entry a cycle: 4 scaled sums, 5 table lookups, 3 products
        self.gate_cycles = math.ceil(self.H / a.act_units) + a.pipeline_depth
        skipping = a.skip_zero_states or a.skip_zero_inputs
        self.scan = 0 if (not skipping or a.scanner_overlap) else math.ceil((self.X + self.H) / a.scanner_width)
        t = a.tech
        if a.weight_bits <= 2:
            self.e_op = t.add_pj(self.acc)                      # add / subtract / skip: no multiplier
        else:
            self.e_op = t.mul_pj(a.act_bits, a.weight_bits) + t.add_pj(self.acc)
        self.e_wbit = t.sram_pj_per_bit(min(a.sram_bank_bytes, a.weight_sram_bytes)) if on_chip else t.dram_pj_per_bit
        self.e_sbit = t.sram_pj_per_bit(min(a.sram_bank_bytes, a.state_sram_bytes))
        self.e_gates = self.G * t.lut_pj + 3 * self.H * t.mul_pj(a.act_bits, a.act_bits) + self.H * t.add_pj(a.act_bits)

    def columns(self, nnz_x: float, nnz_h: float) -> float:
        return (nnz_x if self.a.skip_zero_inputs else self.X) + (nnz_h if self.a.skip_zero_states else self.H)

    def cost(self, K: float, slowest_pe: float | None = None) -> tuple[float, float, dict]:
        """(cycles, matrix-vector cycles, energy by part) of one step over ``K`` columns."""
        a = self.a
        if a.dataflow == "column":
            mv = matvec_cycles(a, self.G, K)
        else:  # each PE owns a slice of the inputs and all G rows, lanes wide
            per_pe = K / a.pes if slowest_pe is None else slowest_pe
            mv = math.ceil(self.G / a.lanes) * per_pe
        wbits = self.G * K * a.weight_bits
        mv = max(mv, wbits / self.bw)
        cycles = mv + self.gate_cycles + self.scan
        e = {"compute": self.G * K * self.e_op,
             "weight_sram" if self.on_chip else "weight_dram": wbits * self.e_wbit,
             "state": (K + self.H) * a.act_bits * self.e_sbit,
             "gates": self.e_gates,
             "static": a.tech.static_mw * 1e-3 * cycles / a.clock_hz * 1e12 * a.tech.node_scale}
        return cycles, mv, e


def _report(a: Accel, wl: Workload, steps: int, on_chip: bool) -> Report:
    dense = 2.0 * steps * sum(wl.gates * wl.hidden_size * (wl.layer_input(k) + wl.hidden_size)
                              for k in range(wl.layers))
    return Report(a.name, steps, 0.0, 0.0, 0.0, a.clock_hz, dense, {}, wl.weight_count() * a.weight_bits, on_chip)


def _add(r: Report, cycles, mv, gate, e):
    r.cycles += cycles
    r.mv_cycles += mv
    r.gate_cycles += gate
    for key, v in e.items():
        r.energy_pj[key] = r.energy_pj.get(key, 0.0) + v


def _analytic_layer(a: Accel, wl: Workload, k: int, on_chip: bool, state_density: float,
                    input_density: float) -> tuple[_Phase, float, float, float, dict]:
    """(phase, columns kept, cycles, matrix-vector cycles, energy) of one step of layer ``k``."""
    ph = _Phase(a, wl, k, on_chip)
    dx = input_density if k == 0 else state_density
    K = ph.columns(ph.X * dx, ph.H * state_density)
    slowest = None
    if a.dataflow == "row":
        # inputs and states are split into pes slices; the slowest slice sets the pace
        n = math.ceil((ph.X + ph.H) / a.pes)
        slowest = expected_max_binomial(n, K / (ph.X + ph.H), a.pes)
    c, mv, e = ph.cost(K, slowest)
    return ph, K, c, mv, e


def analytic(a: Accel, wl: Workload, state_density: float = 1.0, input_density: float = 1.0) -> Report:
    """Expected cost per step from densities of non-zero state and input entries."""
    a.validate()
    if not (0 <= state_density <= 1 and 0 <= input_density <= 1):
        raise HardwareConfigError("densities must be in [0, 1]")
    on_chip = _check_memory(a, wl)
    r = _report(a, wl, wl.steps, on_chip)
    for k in range(wl.layers):
        ph, _, c, mv, e = _analytic_layer(a, wl, k, on_chip, state_density, input_density)
        _add(r, c * wl.steps, mv * wl.steps, ph.gate_cycles * wl.steps, {k2: v * wl.steps for k2, v in e.items()})
    r.state_density = state_density
    return r


def amdahl_bound(a: Accel, wl: Workload, state_density: float, input_density: float = 1.0) -> float:
    """The largest speedup that skipping zeros can give over the same accelerator with skipping off:
    only the matrix-vector phase shrinks, at most in proportion to the columns kept (Amdahl's law).
    Column dataflow meets it exactly (less the scan when it is not overlapped); row dataflow falls
    short by its load imbalance."""
    a.validate()
    dense = dataclasses.replace(a, skip_zero_states=False, skip_zero_inputs=False)
    on_chip = _check_memory(a, wl)
    full = ideal = 0.0
    for k in range(wl.layers):
        ph, K_all, c, mv, _ = _analytic_layer(dense, wl, k, on_chip, 1.0, 1.0)
        kept = _Phase(a, wl, k, on_chip).columns(ph.X * (input_density if k == 0 else state_density),
                                                 ph.H * state_density)
        full += c
        ideal += c - mv * (1 - kept / K_all)
    return full / ideal


def simulate(a: Accel, wl: Workload, state_masks: list[np.ndarray], input_mask: np.ndarray | None = None) -> Report:
    """Walk a sequence step by step. ``state_masks[k]`` is a ``(T, H)`` boolean array of the non-zero
    entries of the state *fed into* layer ``k`` at each step (row 0: the initial state);
    ``input_mask`` the ``(T, X)`` non-zero inputs of layer 0 (dense if None). Layer ``k > 0`` takes the
    new state of layer ``k - 1``, i.e. ``state_masks[k - 1]`` shifted by one step."""
    a.validate()
    if len(state_masks) != wl.layers:
        raise HardwareConfigError(f"{len(state_masks)} state masks given for {wl.layers} layers")
    T = state_masks[0].shape[0]
    on_chip = _check_memory(a, wl)
    r = _report(a, wl, T, on_chip)
    dens = []
    for k in range(wl.layers):
        ph = _Phase(a, wl, k, on_chip)
        hm = np.asarray(state_masks[k], bool)
        if hm.shape != (T, ph.H):
            raise HardwareConfigError(f"state mask of layer {k} has shape {hm.shape}, expected {(T, ph.H)}")
        if k == 0:
            xm = np.ones((T, ph.X), bool) if input_mask is None else np.asarray(input_mask, bool)
        else:  # the input of layer k at step t is the new state of layer k-1 at step t
            prev = np.asarray(state_masks[k - 1], bool)
            xm = np.vstack([prev[1:], prev[-1:]])
        if xm.shape != (T, ph.X):
            raise HardwareConfigError(f"input mask of layer {k} has shape {xm.shape}, expected {(T, ph.X)}")
        dens.append(hm.mean())
        both = np.hstack([xm if a.skip_zero_inputs else np.ones_like(xm),
                          hm if a.skip_zero_states else np.ones_like(hm)])
        n = math.ceil(both.shape[1] / a.pes)
        for t in range(T):
            K = float(both[t].sum())
            slowest = None
            if a.dataflow == "row":
                pad = np.zeros(n * a.pes, bool)
                pad[: both.shape[1]] = both[t]
                slowest = float(pad.reshape(a.pes, n).sum(1).max())
            c, mv, e = ph.cost(K, slowest)
            _add(r, c, mv, ph.gate_cycles, e)
    r.state_density = float(np.mean(dens))
    return r


