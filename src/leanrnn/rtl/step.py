"""``LstmStep``: one LSTM time step in RTL, bit-exact to ``leanrnn.rtl.fixed.FixedLayer.step``.

Phases: the zero-skip matrix-vector block runs over the non-zero inputs and states (two accumulator
banks: ``W_ih x`` and ``W_hh h``); then one gate unit walks the hidden entries, one per cycle: four
scaled gate sums, sigmoid/tanh tables, the cell update, the folded batch norm of ``c``, the output
and the pruning compare; it writes ``c`` and ``h`` back (``h`` into the block's state memory, which
updates the zero-skip mask for the next step). Batch-norm scales are indexed by the step counter
(clamped to the last stored step), as in the runtime.
"""
from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .blocks import SparseMatVec
from .codes import CODE_BITS, acc_width
from .fixed import FixedLayer


def _sat(v, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return Mux(v > hi, hi, Mux(v < lo, lo, v))


class LstmStep(wiring.Component):
    #: cycles beyond ``nnz(x) + nnz(h)`` columns and ``H`` gate cycles: the block's load and drain
    #: (2; the gate unit takes over in the block's ``done`` cycle) and the final ``done`` cycle (1).
    #: (An all-zero input and state saves one more cycle.)
    OVERHEAD = 3

    def __init__(self, layer: FixedLayer, mode: str = "ternary", scan_chunk: int | None = None):
        if mode not in ("ternary", "binary"):
            raise ValueError(f"mode={mode!r}: the LSTM step runs ternary or binary weights")
        self.layer, self.mode, self.scan_chunk = layer, mode, scan_chunk
        f = layer.fmt
        self.X, self.H = layer.codes_ih.shape[0], layer.hidden
        self.T = layer.s_ih.shape[0]
        self.acc_bits = acc_width(f.act_bits, CODE_BITS[mode], self.X + self.H)
        sig = {"start": In(1), "done": Out(1), "x_we": In(1), "x_addr": In(range(max(self.X, 2))),
               "x_data": In(signed(f.act_bits)), "h": Out(signed(f.act_bits)).array(self.H),
               "c": Out(signed(f.c_bits)).array(self.H)}
        super().__init__(sig)

    def elaborate(self, platform):
        import numpy as np
        L, f, X, H = self.layer, self.layer.fmt, self.X, self.H
        m = Module()
        codes = np.vstack([L.codes_ih, L.codes_hh]).tolist()
        m.submodules.mv = mv = SparseMatVec(codes, self.mode, f.act_bits, self.acc_bits, skip=True, split=X,
                                           writable=False, scan_chunk=self.scan_chunk)
        k = Signal(range(max(H, 2)))
        t = Signal(range(max(self.T, 2)))
        acc_x, acc_h = Array(mv.acc[0]), Array(mv.acc[1])

        def rom(values, width):  # a (T, n) table read at [t, index]
            return Array(Array(Const(int(v), signed(width)) for v in row) for row in values)

        s_ih, s_hh = rom(L.s_ih, f.scale_bits), rom(L.s_hh, f.scale_bits)
        b = rom(L.b, f.act_bits + 8)
        s_c, b_c = rom(L.s_c, f.scale_bits), rom(L.b_c, f.act_bits + 8)
        sig_t = Array(Const(int(v), signed(f.act_bits)) for v in L.sig)
        tanh_t = Array(Const(int(v), signed(f.act_bits)) for v in L.tanh)
        n = 1 << f.lut_bits

        def lut(table, z):
            i = z >> (f.act_frac - f.lut_frac)
            i = Mux(i > n // 2 - 1, n // 2 - 1, Mux(i < -(n // 2), -(n // 2), i))
            return table[(i + n // 2)[: f.lut_bits]]

        cs, hs = Array(self.c), Array(self.h)
        gate = []
        for q in range(4):
            r = q * H + k
            z = ((acc_x[r] * s_ih[t][r] + acc_h[r] * s_hh[t][r]) >> f.scale_frac) + b[t][r]
            gate.append(lut(tanh_t if q == 2 else sig_t, z))
        gi, gf, gg, go = gate
        c_new = Signal(signed(f.c_bits))
        up = f.c_frac - f.act_frac
        m.d.comb += c_new.eq(_sat((gf * cs[k] + ((gi * gg) << up)) >> f.act_frac, f.c_bits))
        cn = ((c_new * s_c[t][k]) >> (f.scale_frac + up)) + b_c[t][k] if L.bn_c else c_new >> up
        h_pre = Signal(signed(f.act_bits + 1))
        m.d.comb += h_pre.eq((go * lut(tanh_t, cn)) >> f.act_frac)
        keep = Mux(h_pre < 0, -h_pre, h_pre) >= L.threshold
        h_new = Mux(keep, h_pre, 0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [mv.h_we.eq(self.x_we), mv.h_addr.eq(self.x_addr), mv.h_data.eq(self.x_data)]
                with m.If(self.start):
                    m.d.comb += mv.start.eq(1)
                    m.next = "MATVEC"
            with m.State("MATVEC"), m.If(mv.done):
                m.d.sync += k.eq(0)
                m.next = "GATES"
            with m.State("GATES"):
                m.d.sync += [cs[k].eq(c_new), hs[k].eq(h_new), k.eq(k + 1)]
                m.d.comb += [mv.h_we.eq(1), mv.h_addr.eq(X + k), mv.h_data.eq(h_new)]
                with m.If(k == H - 1):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.d.sync += t.eq(Mux(t == self.T - 1, t, t + 1))
                m.next = "IDLE"
        return m

    @classmethod
    def cycles(cls, columns: int, hidden: int) -> int:
        return columns + hidden + cls.OVERHEAD
