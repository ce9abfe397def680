"""numba kernels of the CPU runtime: matrix-vector products that add instead of multiply and skip
zero inputs, and the fused LSTM gate update.

Weights are stored transposed, ``(n_in, 4H)``: row ``j`` holds the weights that multiply input
``x_j`` (a column of ``W``), so a zero ``x_j`` — a pruned state entry — skips one contiguous row.
For codes, the inner loop selects ``+x_j``, ``-x_j`` or nothing and adds it: no multiply by a weight;
the scales are applied once per output in ``gates``.

No kernel checks bounds: ``Model`` checks every shape and dtype before calling one. All use numpy's
error model, so a NaN born of float32 overflow (finite but huge inputs or scales) propagates as NaN
instead of raising ``ZeroDivisionError`` from inside compiled code.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def acc_ternary(codes, x, out):
    """``out += C^T x`` for int8 codes in {-1, 0, +1}; returns the number of non-zero inputs used."""
    n_in, G = codes.shape
    used = 0
    for j in range(n_in):
        v = x[j]
        if v == 0.0:
            continue
        used += 1
        nv = -v
        row = codes[j]
        for i in range(G):
            c = row[i]
            out[i] += v if c > 0 else (nv if c < 0 else np.float32(0.0))
    return used


@njit(cache=True, error_model="numpy")
def acc_binary(codes, x, out):
    """``out += C^T x`` for int8 codes in {-1, +1}."""
    n_in, G = codes.shape
    used = 0
    for j in range(n_in):
        v = x[j]
        if v == 0.0:
            continue
        used += 1
        nv = -v
        row = codes[j]
        for i in range(G):
            out[i] += v if row[i] > 0 else nv
    return used


@njit(cache=True, error_model="numpy")
def acc_fp(w, x, out):
    """``out += W^T x`` for float32 weights, skipping zero inputs (the fp32 reference kernel)."""
    n_in, G = w.shape
    used = 0
    for j in range(n_in):
        v = x[j]
        if v == 0.0:
            continue
        used += 1
        row = w[j]
        for i in range(G):
            out[i] += row[i] * v
    return used


@njit(cache=True, inline="always", error_model="numpy")
def _tanh(x):
    """tanh as a clamped 13/6 rational polynomial (Eigen's float approximation; |error| < 3e-7):
    no libm call, so the gate loop vectorizes (libm's scalar tanh took half of a step)."""
    x = min(max(x, -7.90531110763549805), 7.90531110763549805)
    x2 = x * x
    p = -2.76076847742355e-16
    p = p * x2 + 2.00018790482477e-13
    p = p * x2 - 8.60467152213735e-11
    p = p * x2 + 5.12229709037114e-08
    p = p * x2 + 1.48572235717979e-05
    p = p * x2 + 6.37261928875436e-04
    p = p * x2 + 4.89352455891786e-03
    q = 1.19825839466702e-06
    q = q * x2 + 1.18534705686654e-04
    q = q * x2 + 2.26843463243900e-03
    q = q * x2 + 4.89352518554385e-03
    return x * p / q


@njit(cache=True, inline="always", error_model="numpy")
def _sig(x):
    return 0.5 * _tanh(0.5 * x) + 0.5


@njit(cache=True, fastmath=True, error_model="numpy")
def gates(acc_ih, acc_hh, s_ih, s_hh, b, c, bn_c, s_c, b_c, thr, h_out):
    """Scale, shift and activate the four gates, update ``c`` in place, write the pruned ``h``;
    returns the number of zero entries of ``h``."""
    H = c.shape[0]
    zeros = 0
    for k in range(H):
        zi = acc_ih[k] * s_ih[k] + acc_hh[k] * s_hh[k] + b[k]
        zf = acc_ih[H + k] * s_ih[H + k] + acc_hh[H + k] * s_hh[H + k] + b[H + k]
        zg = acc_ih[2 * H + k] * s_ih[2 * H + k] + acc_hh[2 * H + k] * s_hh[2 * H + k] + b[2 * H + k]
        zo = acc_ih[3 * H + k] * s_ih[3 * H + k] + acc_hh[3 * H + k] * s_hh[3 * H + k] + b[3 * H + k]
        ck = _sig(zf) * c[k] + _sig(zi) * _tanh(zg)
        c[k] = ck
        cn = ck * s_c[k] + b_c[k] if bn_c else ck
        h = _sig(zo) * _tanh(cn)
        keep = abs(h) >= thr
        h_out[k] = h if keep else np.float32(0.0)
        zeros += np.int64(not keep)
    return zeros


FP, BINARY, TERNARY = 0, 1, 2


@njit(cache=True, error_model="numpy")
def layer_step(kind, w_ih, w_hh, x, h, c, s_ih, s_hh, b, bn_c, s_c, b_c, thr, h_out):
    """One layer, one step, for each row of a batch: ``x (B, n_in)``, ``h, c (B, H)``; ``c`` is
    updated in place, the pruned new state goes to ``h_out``. Returns the zeros of ``h_out``."""
    B, H = h.shape
    acc_ih = np.empty(4 * H, np.float32)
    acc_hh = np.empty(4 * H, np.float32)
    zeros = 0
    for r in range(B):
        acc_ih[:] = 0.0
        acc_hh[:] = 0.0
        if kind == TERNARY:
            acc_ternary(w_ih, x[r], acc_ih)
            acc_ternary(w_hh, h[r], acc_hh)
        elif kind == BINARY:
            acc_binary(w_ih, x[r], acc_ih)
            acc_binary(w_hh, h[r], acc_hh)
        else:
            acc_fp(w_ih, x[r], acc_ih)
            acc_fp(w_hh, h[r], acc_hh)
        zeros += gates(acc_ih, acc_hh, s_ih, s_hh, b, c[r], bn_c, s_c, b_c, thr, h_out[r])
    return zeros
