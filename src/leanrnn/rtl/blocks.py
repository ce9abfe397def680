"""Amaranth RTL of the accelerator's matrix-vector datapath.

* ``TernaryPE`` / ``BinaryPE``: accumulators that add, subtract or skip a broadcast state value
  according to a weight code (``leanrnn.rtl.codes``): adders only. ``MacPE`` multiplies by an 8-bit
  weight: the baseline the multiplier-free PEs are compared with.
* ``ZeroSkipScanner``: holds the non-zero mask of the state and yields its lowest set index each
  cycle, clearing it: exactly ``popcount`` cycles per mask.
* ``SparseMatVec``: weight memory, state memory with its mask, the scanner and ``lanes`` PEs (column
  dataflow: one state entry broadcast to all lanes per cycle). With fewer lanes than rows the rows
  are processed in groups of ``lanes``, the scanner walking the mask once per group.
* ``LstmStep`` (``leanrnn.rtl.step``): that block plus the gate unit and the state registers.
"""
from __future__ import annotations

import math

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .codes import CODE_BITS, ENCODING, check_mode, pack_word
from .codes import acc_width as _acc_width


class _PE(wiring.Component):
    """``banks`` accumulators; each enabled cycle adds ``code * value`` to the one ``bank`` selects
    (two banks keep the input-to-hidden and hidden-to-hidden sums apart); ``clr`` zeroes them all."""

    mode = "ternary"

    def __init__(self, act_width: int = 12, acc_width: int = 24, banks: int = 1):
        self.banks = banks
        super().__init__({"en": In(1), "clr": In(1), "bank": In(range(max(banks, 2))),
                          "code": In(CODE_BITS[self.mode]), "value": In(signed(act_width)),
                          "acc": Out(signed(acc_width)).array(banks)})

    def _update(self, m, acc):
        """Drive ``acc`` (sync) for an enabled cycle."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        for b in range(self.banks):
            with m.If(self.clr):
                m.d.sync += self.acc[b].eq(0)
            with m.Elif(self.en & (self.bank == b)):
                self._update(m, self.acc[b])
        return m


class TernaryPE(_PE):
    mode = "ternary"

    def _update(self, m, acc):
        with m.If(self.code == ENCODING["ternary"][1]):
            m.d.sync += acc.eq(acc + self.value)
        with m.Elif(self.code == ENCODING["ternary"][-1]):
            m.d.sync += acc.eq(acc - self.value)


class BinaryPE(_PE):
    mode = "binary"

    def _update(self, m, acc):
        plus = self.code == ENCODING["binary"][1]
        m.d.sync += acc.eq(Mux(plus, acc + self.value, acc - self.value))


class MacPE(_PE):
    """``acc += value * weight`` with a signed 8-bit weight (or ``weight_width`` bits)."""

    mode = "int8"

    def __init__(self, act_width: int = 12, weight_width: int = 8, acc_width: int = 32, banks: int = 1):
        self.banks = banks
        wiring.Component.__init__(self, {
            "en": In(1), "clr": In(1), "bank": In(range(max(banks, 2))), "code": In(signed(weight_width)),
            "value": In(signed(act_width)), "acc": Out(signed(acc_width)).array(banks)})

    def _update(self, m, acc):
        m.d.sync += acc.eq(acc + self.value * self.code)


PE_CLASS = {"ternary": TernaryPE, "binary": BinaryPE, "int8": MacPE}


def scan_chunk(option: int) -> int | None:
    """A ``--scan-chunk`` option as ``ZeroSkipScanner``'s ``chunk``: 0 is the flat scanner (None)."""
    if option != 0 and not _power_of_two(option):
        raise ValueError(f"--scan-chunk {option} must be a power of two >= 2, or 0 for a flat scanner")
    return option or None


def _power_of_two(c: int) -> bool:
    return c >= 2 and not c & (c - 1)


class ZeroSkipScanner(wiring.Component):
    """``load`` takes ``mask_in``; then while ``valid``, ``index`` is the lowest set bit, cleared on
    ``next``: one index per cycle, lowest first.

    Flat (``chunk=None``): the lowest bit is ``mask & -mask``, a carry chain as long as the mask, and its
    index an OR tree. Chunked (``chunk=C``, a power of two): the mask is kept in ``C``-bit chunks with a
    register of which chunks still hold a set bit; a step picks the lowest such chunk (a chain of
    ``width / C`` bits), selects it and takes its lowest bit (a chain of ``C`` bits). Same indices in the
    same cycles; on an FPGA the two short chains replace one long one (the flat chain over a 320-bit
    mask is the critical path of the ECP5 build)."""

    def __init__(self, width: int, chunk: int | None = None):
        if chunk is not None and not _power_of_two(chunk):
            self._MustUse__silence = True  # refused, not forgotten: no UnusedElaboratable warning when collected
            raise ValueError(f"chunk={chunk} must be a power of two >= 2 (or None for a flat scanner)")
        self.width = width
        self.chunk = chunk if chunk is not None and chunk < width else None
        super().__init__({"load": In(1), "mask_in": In(width), "next": In(1),
                          "valid": Out(1), "index": Out(range(max(width, 2)))})

    @staticmethod
    def _encode(m: Module, out, onehot, n: int) -> None:
        for b in range(len(out)):
            bits = [onehot[i] for i in range(n) if i >> b & 1]
            m.d.comb += out[b].eq(Cat(*bits).any() if bits else 0)

    def elaborate(self, platform):
        m = Module()
        if self.chunk is None:
            mask = Signal(self.width)
            lowest = Signal(self.width)
            m.d.comb += [self.valid.eq(mask != 0), lowest.eq(mask & -mask)]
            self._encode(m, self.index, lowest, self.width)
            with m.If(self.load):
                m.d.sync += mask.eq(self.mask_in)
            with m.Elif(self.next & self.valid):
                m.d.sync += mask.eq(mask & ~lowest)
            return m
        C = self.chunk
        n = math.ceil(self.width / C)
        chunks = [Signal(C, name=f"chunk{c}") for c in range(n)]
        live = Signal(n)      # chunk c still holds a set bit
        first = Signal(n)     # the lowest live chunk, one-hot
        part = Signal(C)      # its bits
        low = Signal(C)       # their lowest, one-hot
        m.d.comb += [first.eq(live & -live), self.valid.eq(live != 0), low.eq(part & -part)]
        sel = 0
        for c in range(n):
            sel = sel | Mux(first[c], chunks[c], 0)
        m.d.comb += part.eq(sel)
        bidx, cidx = Signal(C.bit_length() - 1), Signal(max(1, (n - 1).bit_length()))
        self._encode(m, bidx, low, C)
        self._encode(m, cidx, first, n)
        m.d.comb += self.index.eq(Cat(bidx, cidx))
        with m.If(self.load):
            for c in range(n):
                bits = self.mask_in[c * C: min((c + 1) * C, self.width)]
                m.d.sync += [chunks[c].eq(bits), live[c].eq(bits != 0)]
        with m.Elif(self.next & self.valid):
            for c in range(n):
                with m.If(first[c]):
                    m.d.sync += [chunks[c].eq(chunks[c] & ~low), live[c].eq(part != low)]
        return m


class SparseMatVec(wiring.Component):
    """``acc[bank][i] = sum_j C[j, g * lanes + i] * h[j]`` over the non-zero ``h[j]`` (all ``j``
    with ``skip=False``), one column per cycle, for each row group ``g``.

    ``codes``: ``(cols, rows)`` nested lists: ints in {-1, 0, 1} (ternary), {-1, 1} (binary) or
    [-128, 127] (``int8``, the multiply-accumulate baseline). The weight memory holds one word of
    ``lanes`` codes per (group, column). The state is written through ``h_we/h_addr/h_data``; the block
    keeps its non-zero mask as it is written. With ``split=X`` columns below ``X`` (the layer input)
    go to bank 0 and the rest (the state) to bank 1. ``writable`` adds a port that rewrites weight
    words (``w_addr = g * cols + j``). After ``start``, ``valid`` marks the cycle in which ``acc`` holds
    group ``group``'s sums (they are cleared the next cycle unless it was the last group); ``done``
    comes with the last group's ``valid``, and those sums stay until the next ``start``. ``scan_chunk``
    picks the scanner's structure (``ZeroSkipScanner``'s ``chunk``); it changes timing paths, not cycles.
    """

    def __init__(self, codes, mode: str = "ternary", act_width: int = 12, acc_width: int | None = None,
                 skip: bool = True, split: int | None = None, lanes: int | None = None, writable: bool = True,
                 scan_chunk: int | None = None):
        self.mode = check_mode(mode)
        self.cols, self.rows = len(codes), len(codes[0])
        self.lanes = lanes or self.rows
        self.groups = math.ceil(self.rows / self.lanes)
        self.banks = 1 if split is None else 2
        self.split, self.skip, self.act_width, self.scan_chunk = split, skip, act_width, scan_chunk
        wb = CODE_BITS[mode]
        self.acc_width = acc_width or _acc_width(act_width, wb, self.cols)
        pad = {"ternary": 0, "binary": 1, "int8": 0}[mode]  # the code of rows past the last one
        lane_rows = [range(g * self.lanes, (g + 1) * self.lanes) for g in range(self.groups)]
        self.init = [pack_word([col[r] if r < self.rows else pad for r in rows], mode)
                     for rows in lane_rows for col in codes]
        depth = len(self.init)
        sig = {"start": In(1), "done": Out(1), "busy": Out(1), "valid": Out(1),
               "group": Out(range(max(self.groups, 2))),
               "h_we": In(1), "h_addr": In(range(max(self.cols, 2))), "h_data": In(signed(act_width)),
               "acc": Out(signed(self.acc_width)).array(self.banks, self.lanes)}
        if writable:
            sig.update({"w_we": In(1), "w_addr": In(range(max(depth, 2))), "w_data": In(self.lanes * wb)})
        super().__init__(sig)

    @staticmethod
    def cycles(columns: int, groups: int = 1) -> int:
        """Cycles from ``start`` to ``done`` over ``columns`` processed columns: per group one cycle
        to load the scanner, one per column, one to drain the last read (an all-zero state: one cycle
        per group)."""
        return groups * (columns + 2) if columns else groups

    def elaborate(self, platform):
        m = Module()
        wb, cols = CODE_BITS[self.mode], self.cols
        m.submodules.weights = weights = Memory(shape=unsigned(self.lanes * wb), depth=len(self.init), init=self.init)
        m.submodules.states = states = Memory(shape=signed(self.act_width), depth=cols, init=[])
        w_rd, s_rd, s_wr = weights.read_port(), states.read_port(), states.write_port()
        if "w_we" in self.signature.members:
            w_wr = weights.write_port()
            m.d.comb += [w_wr.addr.eq(self.w_addr), w_wr.data.eq(self.w_data), w_wr.en.eq(self.w_we)]
        m.submodules.scan = scan = ZeroSkipScanner(cols, self.scan_chunk)
        mask = Signal(cols)  # the non-zero state entries, kept as they are written
        m.d.comb += [s_wr.addr.eq(self.h_addr), s_wr.data.eq(self.h_data), s_wr.en.eq(self.h_we)]
        with m.If(self.h_we):
            m.d.sync += mask.bit_select(self.h_addr, 1).eq(self.h_data != 0)

        pes = [PE_CLASS[self.mode](self.act_width, acc_width=self.acc_width, banks=self.banks)
               for _ in range(self.lanes)]
        for i, pe in enumerate(pes):
            m.submodules[f"lane{i}"] = pe
            m.d.comb += [self.acc[b][i].eq(pe.acc[b]) for b in range(self.banks)]
        base = Signal(range(max(len(self.init), 2)))  # first weight word of the current group
        issue = Signal()      # a column address goes to the memories this cycle
        fetched = Signal()    # its weight word and state value arrive this cycle
        reload = Signal()     # the group is finished: restart the scanner, clear the lanes
        m.d.comb += [scan.mask_in.eq(mask if self.skip else (1 << cols) - 1),
                     w_rd.addr.eq(base + scan.index), s_rd.addr.eq(scan.index)]
        m.d.comb += [scan.load.eq(reload)] + [pe.clr.eq(reload) for pe in pes]
        with m.FSM():
            with m.State("IDLE"), m.If(self.start):
                m.d.comb += reload.eq(1)
                m.d.sync += [base.eq(0), self.group.eq(0)]
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), issue.eq(scan.valid), scan.next.eq(1)]
                with m.If(~scan.valid & ~fetched):
                    m.d.comb += self.valid.eq(1)
                    with m.If(self.group == self.groups - 1):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += reload.eq(1)
                        m.d.sync += [base.eq(base + cols), self.group.eq(self.group + 1)]
        m.d.sync += fetched.eq(issue)
        bank = Signal()
        if self.split is not None:  # the column fetched this cycle was issued last cycle
            m.d.sync += bank.eq(scan.index >= self.split)
        for i, pe in enumerate(pes):
            m.d.comb += [pe.en.eq(fetched), pe.value.eq(s_rd.data), pe.bank.eq(bank),
                         pe.code.eq(w_rd.data[wb * i: wb * (i + 1)])]
        return m
