"""Amaranth RTL of the accelerator's matrix-vector datapath (first part of the RTL issue).

* ``TernaryPE`` / ``BinaryPE``: an accumulator that adds, subtracts or skips a broadcast state value
  according to a weight code (2-bit ternary ``00`` = 0, ``01`` = +1, ``10`` = -1; 1-bit binary
  ``1`` = +1, ``0`` = -1, the codes of ``leanrnn.export``): adders only. ``MacPE`` is the
  multiplier baseline for the synthesis comparison.
* ``ZeroSkipScanner``: holds the non-zero mask of the state and yields the lowest set index each
  cycle, clearing it (``mask & (mask - 1)``): exactly ``popcount`` cycles per mask.
* ``SparseMatVec``: weight-column memory, state memory with its mask, the scanner and ``rows`` PEs
  (one per output row, column dataflow). ``start`` → one column per cycle over the non-zero state
  entries (all entries with ``skip=False``) → ``done``; the accumulators hold ``C^T h``. With
  ``split=X`` the first ``X`` columns (the layer input) and the rest (the state) go to two
  accumulator banks, as one LSTM step needs.
* ``LstmStep`` (``leanrnn.rtl.step``): that block plus the gate unit and the state registers: a whole
  time step from ``start`` to ``done``.
"""
from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class _AddPE(wiring.Component):
    """Accumulators that add, subtract or skip a broadcast value; ``banks=2`` keeps two sums (the
    input-to-hidden and hidden-to-hidden products), chosen per column by ``bank``."""

    code_width = 2

    def __init__(self, act_width: int = 12, acc_width: int = 24, banks: int = 1):
        self.banks = banks
        sig = {"en": In(1), "clr": In(1), "bank": In(1), "code": In(self.code_width),
               "value": In(signed(act_width)), "acc": Out(signed(acc_width))}
        if banks == 2:
            sig["acc1"] = Out(signed(acc_width))
        super().__init__(sig)

    def _delta(self):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        accs = [self.acc] + ([self.acc1] if self.banks == 2 else [])
        add, sub = self._delta()
        for b, acc in enumerate(accs):
            hit = self.en & ((self.bank == b) if self.banks == 2 else 1)
            with m.If(self.clr):
                m.d.sync += acc.eq(0)
            with m.Elif(hit & add):
                m.d.sync += acc.eq(acc + self.value)
            with m.Elif(hit & sub):
                m.d.sync += acc.eq(acc - self.value)
        return m


class TernaryPE(_AddPE):
    code_width = 2

    def _delta(self):
        return self.code == 0b01, self.code == 0b10


class BinaryPE(_AddPE):
    code_width = 1

    def _delta(self):
        return self.code == 1, self.code == 0


class MacPE(wiring.Component):
    """Full-precision baseline: ``acc += value * weight``."""

    def __init__(self, act_width: int = 12, weight_width: int = 12, acc_width: int = 32):
        super().__init__({"en": In(1), "clr": In(1), "code": In(signed(weight_width)),
                          "value": In(signed(act_width)), "acc": Out(signed(acc_width))})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.clr):
            m.d.sync += self.acc.eq(0)
        with m.Elif(self.en):
            m.d.sync += self.acc.eq(self.acc + self.value * self.code)
        return m


class ZeroSkipScanner(wiring.Component):
    """``load`` takes ``mask_in``; then while ``valid``, ``index`` is the lowest set bit, cleared on
    ``next``."""

    def __init__(self, width: int):
        self.width = width
        super().__init__({"load": In(1), "mask_in": In(width), "next": In(1),
                          "valid": Out(1), "index": Out(range(max(width, 2)))})

    def elaborate(self, platform):
        m = Module()
        mask = Signal(self.width)
        m.d.comb += self.valid.eq(mask != 0)
        for i in reversed(range(self.width)):  # the last assignment wins: the lowest set bit
            with m.If(mask[i]):
                m.d.comb += self.index.eq(i)
        with m.If(self.load):
            m.d.sync += mask.eq(self.mask_in)
        with m.Elif(self.next & self.valid):
            m.d.sync += mask.eq(mask & (mask - 1))
        return m


class SparseMatVec(wiring.Component):
    """``acc[i] = sum_j C[j, i] * h[j]`` over the non-zero ``h[j]``, one column per cycle.

    ``codes``: ``(cols, rows)`` nested lists of ints in {-1, 0, 1} (ternary) or {-1, 1} (binary),
    stored column by column. The state is written through ``h_we/h_addr/h_data``; the block keeps
    its non-zero mask as it is written; weight columns can be rewritten through ``w_we/w_addr/w_data``
    (packed like ``leanrnn.export``). Timing: ``cycles(nnz)`` from ``start`` to ``done``: the load, one
    column issued per cycle, then the last read and accumulate.
    """

    LATENCY = 2

    @classmethod
    def cycles(cls, columns: int) -> int:
        """Cycles from ``start`` to ``done`` for ``columns`` processed columns (an all-zero state
        finishes in one)."""
        return columns + cls.LATENCY if columns else 1

    def __init__(self, codes, mode: str = "ternary", act_width: int = 12, acc_width: int = 24, skip: bool = True,
                 split: int | None = None):
        self.split = split
        if mode not in ("ternary", "binary"):
            raise ValueError(f"mode={mode!r} must be 'ternary' or 'binary'")
        self.cols, self.rows = len(codes), len(codes[0])
        self.mode, self.skip, self.act_width = mode, skip, act_width
        self.cb = 2 if mode == "ternary" else 1
        enc = {"ternary": {0: 0b00, 1: 0b01, -1: 0b10}, "binary": {1: 1, -1: 0}}[mode]
        self.init = [sum(enc[int(c)] << (self.cb * i) for i, c in enumerate(col)) for col in codes]
        sig = {"start": In(1), "done": Out(1), "busy": Out(1),
               "h_we": In(1), "h_addr": In(range(max(self.cols, 2))), "h_data": In(signed(act_width)),
               "w_we": In(1), "w_addr": In(range(max(self.cols, 2))), "w_data": In(self.rows * self.cb)}
        for i in range(self.rows):
            sig[f"acc{i}"] = Out(signed(acc_width))
            if split is not None:
                sig[f"accb{i}"] = Out(signed(acc_width))
        self.acc_width = acc_width
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        W = Memory(shape=unsigned(self.rows * self.cb), depth=self.cols, init=self.init)
        S = Memory(shape=signed(self.act_width), depth=self.cols, init=[])
        m.submodules.wmem, m.submodules.smem = W, S
        wr = W.read_port()
        ww = W.write_port()
        sr = S.read_port()
        sw = S.write_port()
        m.d.comb += [ww.addr.eq(self.w_addr), ww.data.eq(self.w_data), ww.en.eq(self.w_we)]
        m.submodules.scan = scan = ZeroSkipScanner(self.cols)
        mask = Signal(self.cols)
        m.d.comb += [sw.addr.eq(self.h_addr), sw.data.eq(self.h_data), sw.en.eq(self.h_we)]
        with m.If(self.h_we):
            for j in range(self.cols):
                with m.If(self.h_addr == j):
                    m.d.sync += mask[j].eq(self.h_data != 0)
        pe_cls = TernaryPE if self.mode == "ternary" else BinaryPE
        pes = []
        for i in range(self.rows):
            pe = pe_cls(self.act_width, self.acc_width, banks=1 if self.split is None else 2)
            m.submodules[f"pe{i}"] = pe
            pes.append(pe)
            m.d.comb += getattr(self, f"acc{i}").eq(pe.acc)
            if self.split is not None:
                m.d.comb += getattr(self, f"accb{i}").eq(pe.acc1)
        issue = Signal()      # a column address goes to the memories this cycle
        fetched = Signal()    # its column and state value arrive this cycle
        m.d.comb += [scan.mask_in.eq(mask if self.skip else (1 << self.cols) - 1),
                     wr.addr.eq(scan.index), sr.addr.eq(scan.index)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += scan.load.eq(1)
                    m.d.comb += [pe.clr.eq(1) for pe in pes]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), issue.eq(scan.valid), scan.next.eq(1)]
                with m.If(~scan.valid & ~fetched):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        m.d.sync += fetched.eq(issue)
        bank = Signal()
        if self.split is not None:  # the column fetched this cycle was issued last cycle
            m.d.sync += bank.eq(scan.index >= self.split)
        for i, pe in enumerate(pes):
            m.d.comb += [pe.en.eq(fetched), pe.value.eq(sr.data), pe.bank.eq(bank),
                         pe.code.eq(wr.data[self.cb * i: self.cb * (i + 1)])]
        return m
