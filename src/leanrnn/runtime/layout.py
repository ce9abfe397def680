"""Packing a ``ModelSpec`` into the flat arrays the kernels read, and a state's arrays for a batch.

Offsets are in elements of their array and start on 64-byte boundaries, so every row the inner
loops stream is cache-line aligned. Field names are the constants of ``kernels``.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..export.spec import InputSpec, OutputSpec
from . import kernels as K

TABLE_BYTES = 64 << 20   # largest (V, 4H) float32 input-projection table kept in memory
_ALIGN = 64


class _Blob:
    """A growing flat array: ``add`` returns the aligned offset where ``a`` was placed."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.parts: list[tuple[int, np.ndarray]] = []
        self.size = 0

    def add(self, a) -> int:
        a = np.ascontiguousarray(a, dtype=self.dtype).reshape(-1)
        step = _ALIGN // self.dtype.itemsize
        off = -(-self.size // step) * step
        self.parts.append((off, a))
        self.size = off + a.size
        return off

    def array(self) -> np.ndarray:
        out = np.zeros(max(self.size, 1), self.dtype)
        for off, a in self.parts:
            out[off: off + a.size] = a
        return out


def input_table(spec) -> np.ndarray | None:
    """``(V, 4H)`` float32 ``W_ih^T e_v`` of an embedding input, or None when it would exceed
    ``TABLE_BYTES`` (then the embedding row is multiplied at each step)."""
    inp, L0 = spec.input, spec.layers[0]
    if inp.kind != "embedding" or inp.vocab * 4 * L0.hidden_size * 4 > TABLE_BYTES:
        return None
    return inp.embed.astype(np.float32) @ L0.w_ih.astype(np.float32)


def pack(spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(F, Q, M)`` of a model spec."""
    F, Q = _Blob(np.float32), _Blob(np.int8)
    M = np.zeros(K.M_HEAD + K.M_LAYER * len(spec.layers), np.int64)
    table = input_table(spec)
    M[K.L_COUNT], M[K.IN_SIZE] = len(spec.layers), spec.input.size
    if table is not None:
        M[K.IN_KIND], M[K.IN_OFF] = K.IN_TABLE, F.add(table)
    elif spec.input.kind == "embedding":
        M[K.IN_KIND], M[K.IN_OFF] = K.IN_EMBED, F.add(spec.input.embed)
    else:
        M[K.IN_KIND] = K.IN_ONEHOT if spec.input.kind == "onehot" else K.IN_DENSE
    for j, L in enumerate(spec.layers):
        m = K.M_HEAD + K.M_LAYER * j
        codes = L.weights != "fp"
        blob = Q if codes else F
        M[m + K.K_CODES], M[m + K.K_NIN], M[m + K.K_H], M[m + K.K_T] = codes, L.input_size, L.hidden_size, L.steps
        M[m + K.K_R], M[m + K.K_P] = L.output_size, L.proj_size
        M[m + K.K_WIH], M[m + K.K_WHH] = blob.add(L.w_ih), blob.add(L.w_hh)
        if L.proj_size:
            M[m + K.K_WHR], M[m + K.K_SHR] = blob.add(L.w_hr), F.add(L.s_hr)
        M[m + K.K_SIH], M[m + K.K_SHH], M[m + K.K_B] = F.add(L.s_ih), F.add(L.s_hh), F.add(L.b)
        M[m + K.K_NORMC] = L.norm_c
        unused = np.zeros((L.steps, L.hidden_size), np.float32)  # sliced per step, read only with norm_c
        M[m + K.K_SC] = F.add(L.s_c if L.norm_c else unused)
        M[m + K.K_BC] = F.add(L.b_c if L.norm_c else unused)
        M[m + K.K_THR] = F.add(np.float32([L.threshold]))
        M[m + K.K_DENSE] = not L.prune_output
    M[K.OUT_N] = spec.num_outputs
    M[K.OUT_W], M[K.OUT_B] = F.add(spec.output.weight.T), F.add(spec.output.bias)
    return F.array(), Q.array(), M


def state_arrays(spec, batch: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(S, N, views)`` of a zero state for ``batch`` streams; ``views`` holds per-layer ``h``
    ``(B, R)`` (the state fed back, ``R`` = proj_size or H) and ``c`` ``(B, H)``, ``logits (B, V)``
    and ``tokens (B,)``."""
    L = len(spec.layers)
    S, N = _Blob(np.float32), _Blob(np.int64)
    Nf = np.zeros(K.N_HEAD + K.N_LAYER * L, np.int64)
    hs, cs = [], []
    for k, lay in enumerate(spec.layers):
        n = K.N_HEAD + K.N_LAYER * k
        H, R, G = lay.hidden_size, lay.output_size, 4 * lay.hidden_size
        Nf[n + K.S_H], Nf[n + K.S_C] = S.add(np.zeros(batch * R)), S.add(np.zeros(batch * H))
        Nf[n + K.S_AIH], Nf[n + K.S_AHH] = S.add(np.zeros(G)), S.add(np.zeros(G))
        Nf[n + K.S_HF], Nf[n + K.S_AHR] = S.add(np.zeros(H)), S.add(np.zeros(lay.proj_size))
        Nf[n + K.S_HD] = S.add(np.zeros(batch * R if not lay.prune_output else 0))
        hs.append((Nf[n + K.S_H], R))
        cs.append((Nf[n + K.S_C], H))
    V = spec.num_outputs
    Nf[K.N_LOGITS] = S.add(np.zeros(batch * V))
    Nf[K.N_B] = batch
    N.add(Nf)
    Nf[K.N_TOK] = N.add(np.zeros(batch))
    widest = max([spec.input.size] + [max(lay.input_size, lay.hidden_size) for lay in spec.layers])
    Nf[K.N_IDX] = N.add(np.zeros(widest))
    N.parts[0] = (0, Nf)
    Sa, Na = S.array(), N.array()
    views = {"h": tuple(Sa[o: o + batch * H].reshape(batch, H) for o, H in hs),
             "c": tuple(Sa[o: o + batch * H].reshape(batch, H) for o, H in cs),
             "logits": Sa[Nf[K.N_LOGITS]: Nf[K.N_LOGITS] + batch * V].reshape(batch, V),
             "tokens": Na[Nf[K.N_TOK]: Nf[K.N_TOK] + batch]}
    return Sa, Na, views


def direction_spec(spec, L):
    """A one-layer, dense-input model spec of layer direction ``L`` with no output layer: what
    ``kernels.layer_steps`` runs for each direction of a bidirectional model."""
    R = L.output_size
    return replace(spec, input=InputSpec("dense", L.input_size, None, None, False, None),
                   layers=(replace(L, index=0),),
                   output=OutputSpec(np.zeros((0, R), np.float32), np.zeros(0, np.float32), False))
