"""Fixed-point reference of one LSTM time step: the arithmetic the RTL datapath implements.

Numbers are integers with ``frac`` fractional bits (value = integer / 2**frac):

* inputs and states: ``act_bits`` wide, ``act_frac`` fractional bits, saturated;
* products of codes and states accumulate exactly (adds and subtracts only);
* each gate row's scale ``S`` (weight scale times folded batch norm) is ``round(S * 2**scale_frac)``;
  ``z = ((acc_ih * S_ih + acc_hh * S_hh) >> scale_frac) + B`` (``>>``: arithmetic shift, floor);
* sigmoid and tanh are tables of ``2**lut_bits`` entries over ``[-2**(lut_bits-1-lut_frac),
  2**(lut_bits-1-lut_frac))``, indexed by ``z >> (act_frac - lut_frac)`` clamped to the table, each
  entry the function at its bin's centre;
* the cell state has its own ``c_frac`` fractional bits: ``c = sat((f * c + ((i * g) << (c_frac -
  act_frac))) >> act_frac)`` in ``c_bits``; with batch norm ``c_hat = ((c * S_c) >> (scale_frac +
  c_frac - act_frac)) + B_c``, else ``c_hat = c >> (c_frac - act_frac)``; ``h = (o * tanh(c_hat)) >>
  act_frac``, zeroed when ``|h| < threshold``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..export.format import VERSION, unpack_codes


@dataclass(frozen=True)
class FixedFormat:
    act_bits: int = 16
    act_frac: int = 12
    c_bits: int = 24
    c_frac: int = 16      # the cell state keeps more fraction: folded BN gains on c reach the hundreds
    scale_frac: int = 14
    scale_bits: int = 32
    lut_bits: int = 11
    lut_frac: int = 7

    def q(self, v, frac=None) -> np.ndarray:
        return np.round(np.asarray(v, np.float64) * 2.0 ** (self.act_frac if frac is None else frac)).astype(np.int64)

    def sat(self, v, bits) -> np.ndarray:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return np.clip(v, lo, hi)

    def table(self, fn) -> np.ndarray:
        n = 1 << self.lut_bits
        idx = np.arange(n) - n // 2
        centre = (idx + 0.5) / 2.0 ** self.lut_frac
        return self.sat(self.q(fn(centre)), self.act_bits)

    def lookup(self, table: np.ndarray, z: np.ndarray) -> np.ndarray:
        n = 1 << self.lut_bits
        i = np.clip(z >> (self.act_frac - self.lut_frac), -(n // 2), n // 2 - 1)
        return table[i + n // 2]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class FixedLayer:
    """One layer of an exported model in fixed point (scales of every stored BN step)."""
    fmt: FixedFormat
    codes_ih: np.ndarray     # (X, 4H) int8
    codes_hh: np.ndarray     # (H, 4H) int8
    s_ih: np.ndarray         # (T, 4H) int, scale_frac
    s_hh: np.ndarray
    b: np.ndarray            # (T, 4H) int, act_frac
    bn_c: bool
    s_c: np.ndarray          # (T, H) int, scale_frac
    b_c: np.ndarray          # (T, H) int, act_frac
    threshold: int           # act_frac
    sig: np.ndarray
    tanh: np.ndarray

    @property
    def hidden(self) -> int:
        return self.codes_hh.shape[0]

    @classmethod
    def from_export(cls, header: dict, tensors: dict, k: int = 0, fmt: FixedFormat = FixedFormat()) -> FixedLayer:
        L = header["layers"][k]
        H, mode = int(L["hidden_size"]), L["weights"]
        if mode == "fp":
            raise ValueError("the fixed-point datapath needs binary or ternary weights")
        for part, what in (("reverse", "a bidirectional layer"), ("proj_size", "a projection (proj_size)")):
            if part in L:
                raise ValueError(f"the fixed-point datapath models one-directional layers without projection; "
                                 f"layer {k} has {what}")
        version = header.get("version", VERSION)  # the code layout depends on the file's version
        codes = {m: unpack_codes(tensors[f"l{k}.{m}"], 4 * H, mode, version) for m in ("w_ih", "w_hh")}
        sq = lambda name: fmt.sat(fmt.q(tensors[f"l{k}.{name}"], fmt.scale_frac), fmt.scale_bits)  # noqa: E731
        bn = bool(L["batch_norm"])
        T = tensors[f"l{k}.s_ih"].shape[0]
        zeros = np.zeros((T, H), np.int64)
        return cls(fmt, codes["w_ih"], codes["w_hh"], sq("s_ih"), sq("s_hh"), fmt.q(tensors[f"l{k}.b"]), bn,
                   sq("s_c") if bn else zeros, fmt.q(tensors[f"l{k}.b_c"]) if bn else zeros,
                   int(math.ceil(L["threshold"] * 2 ** fmt.act_frac - 1e-9)),
                   fmt.table(_sigmoid), fmt.table(np.tanh))

    def step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int = 0):
        """One step on integer vectors ``x (X,)``, ``h, c (H,)``: returns ``(h, c, acc_ih, acc_hh)``."""
        f = self.fmt
        ts = min(t, self.s_ih.shape[0] - 1)
        acc_ih = (self.codes_ih.astype(np.int64) * x[:, None]).sum(0)
        acc_hh = (self.codes_hh.astype(np.int64) * h[:, None]).sum(0)
        z = ((acc_ih * self.s_ih[ts] + acc_hh * self.s_hh[ts]) >> f.scale_frac) + self.b[ts]
        H = self.hidden
        i, fg, o = (f.lookup(self.sig, z[q * H:(q + 1) * H]) for q in (0, 1, 3))
        g = f.lookup(self.tanh, z[2 * H:3 * H])
        up = f.c_frac - f.act_frac
        c = f.sat((fg * c + ((i * g) << up)) >> f.act_frac, f.c_bits)
        cn = ((c * self.s_c[ts]) >> (f.scale_frac + up)) + self.b_c[ts] if self.bn_c else c >> up
        hn = (o * f.lookup(self.tanh, cn)) >> f.act_frac
        hn = np.where(np.abs(hn) >= self.threshold, hn, 0)
        return hn, c, acc_ih, acc_hh


def compare_with_float(model, sequence, k_layer: int = 0, fmt: FixedFormat = FixedFormat()) -> dict:
    """Run a one-layer runtime model in float and in fixed point over ``sequence`` (token ids) and
    report the error of the hidden state and of the next-token distribution."""
    from ..runtime.model import Model  # noqa: F401  (type of ``model``)
    if len(model.layers) != 1:
        raise ValueError("compare_with_float handles one-layer models")
    fl = FixedLayer.from_export(model.header, model._tensors, k_layer, fmt)
    state = model.initial_state(1)
    H = fl.hidden
    h_q, c_q = np.zeros(H, np.int64), np.zeros(H, np.int64)
    errs, kl, agree = [], [], 0
    for t, tok in enumerate(sequence):
        v = model._inputs(tok)
        xq = fmt.sat(fmt.q(v[0]), fmt.act_bits)
        h_q, c_q, _, _ = fl.step(xq, h_q, c_q, t)
        y, state = model.step(tok, state)
        yq = (h_q / 2.0 ** fmt.act_frac) @ model.out_w.T + model.out_b
        errs.append(np.abs(h_q / 2.0 ** fmt.act_frac - state.h[0][0]).max())
        p = np.exp(y - y.max())
        p /= p.sum()
        pq = np.exp(yq - yq.max())
        pq /= pq.sum()
        kl.append(float((p * (np.log(p + 1e-30) - np.log(pq + 1e-30))).sum()))
        agree += int(y.argmax() == yq.argmax())
    return {"steps": len(sequence), "max_abs_h_error": float(np.max(errs)), "mean_abs_h_error": float(np.mean(errs)),
            "mean_kl_bits": float(np.mean(kl) / math.log(2)), "top1_agreement": agree / len(sequence)}
