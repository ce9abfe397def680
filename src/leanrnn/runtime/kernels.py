"""numba kernels of the CPU runtime: one compiled call advances every stream of a batch by one step
through all layers, the pruning and the output layer (``step``), or by a whole sequence (``steps``).

Data. The model is packed into three flat arrays made once at load (``layout.pack``): ``F``
float32 (input-projection table, per-gate tables, fp weights, the transposed output layer), ``Q``
int8 (weight codes, one byte per weight), ``M`` int64 (per-layer offsets and sizes). A state is
two more (``S`` float32: ``h``, ``c``, accumulators, logits; ``N`` int64: time step, counters,
token ids, index scratch), so a step allocates nothing and the Python call passes six arrays.

Products. Matrices are stored transposed, ``(n_in, 4H)``: row ``j`` holds what multiplies input
``x_j``. ``spmv`` first lists the non-zero ``x_j`` (the pruned state's survivors), then adds four
rows per pass, ``acc += x_a C_a + x_b C_b + x_c C_c + x_d C_d``, converting the int8 codes to float
in the loop, which LLVM vectorizes (one load and store of ``acc`` per four rows). Measured against
one row per pass, a select on the code's sign, 2-bit codes decoded in the loop (byte-strided so
they vectorize) and float32 weights, this was fastest at hidden 256 to 2048 with 90% zeros (1.3,
17 and 161 µs for one product at hidden 256, 1000, 2048 against 1.7, 22, 211 µs one row at a
time; 2-bit decoding 2-4x slower than int8 even where it reads 4x fewer bytes). The output layer
``(H, n_out)`` is multiplied the same way, so its zero-state rows are skipped too.

Input. A language model's first-layer product ``W_ih^T e_v`` depends only on the token: the
runtime keeps it as a table ``(V, 4H)`` float32 when that fits ``layout.TABLE_BYTES`` and reads
one row per step; a one-hot input reads row ``v`` of the codes; otherwise the embedding row goes
through ``spmv``.

Gates. ``tanh`` is a clamped 13/6 rational polynomial (Eigen's float approximation), ``sigmoid(x)
= tanh(x/2)/2 + 1/2``: no libm call, so the gate loop vectorizes. Measured error in float32 over
[-20, 20] (tests): ``|tanh - tanh_exact| < 6e-7``, ``|sigmoid - exact| < 4e-7``.

Projection (LSTMP). The gates write the unpruned ``h`` into scratch; ``spmv`` projects it
(``(H, P)`` codes) into ``r``, which is scaled, pruned and fed back (``W_hh`` is ``(P, 4H)``).

Pruning only the fed-back state (``K_DENSE``): the gates (and the projection) write the unpruned
``r`` into the stream's ``S_HD`` row, which the next layer and the output layer read; a pruned copy
goes to ``S_H``, the state fed back.

Bidirectional classifiers cannot step: ``layer_steps`` runs one layer direction over a whole
sequence (the reverse one over it backwards), and ``Model.classify`` chains them layer by layer.

No kernel checks bounds: ``Model`` checks every input before calling one. All use numpy's error
model, so a NaN born of float32 overflow propagates instead of raising inside compiled code.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# input kinds (M[IN_KIND])
IN_TABLE, IN_ONEHOT, IN_EMBED, IN_DENSE = 0, 1, 2, 3
# model header fields of M
L_COUNT, IN_KIND, IN_SIZE, IN_OFF, OUT_N, OUT_W, OUT_B, M_HEAD = 0, 1, 2, 3, 4, 5, 6, 8
# per-layer fields of M (stride M_LAYER from M_HEAD)
(K_CODES, K_NIN, K_H, K_T, K_NORMC, K_WIH, K_WHH, K_SIH, K_SHH, K_B, K_SC, K_BC, K_THR,
 K_R, K_P, K_WHR, K_SHR, K_DENSE, M_LAYER) = range(19)
# state fields of N: time step, batch, offsets of the logits (in S), token ids and index scratch (in N)
N_T, N_B, N_LOGITS, N_TOK, N_IDX, N_HEAD = 0, 1, 2, 3, 4, 8
# per-layer fields of N (stride N_LAYER from N_HEAD)
S_H, S_C, S_AIH, S_AHH, S_ZEROS, S_TOTAL, S_HF, S_AHR, S_HD, N_LAYER = range(10)


@njit(cache=True, inline="always", error_model="numpy")
def _tanh(x):
    """tanh as a clamped 13/6 rational polynomial (Eigen's float approximation)."""
    lim = np.float32(7.90531110763549805)
    x = lim if x > lim else x  # selects (which vectorize) that keep a NaN a NaN
    x = -lim if x < -lim else x
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return x * p / q


@njit(cache=True, inline="always", error_model="numpy")
def _sig(x):
    return np.float32(0.5) * _tanh(np.float32(0.5) * x) + np.float32(0.5)


@njit(cache=True, error_model="numpy")
def tanh_sigmoid(x, t, s):
    """The gates' ``tanh`` and ``sigmoid`` of each ``x`` (float32) into ``t`` and ``s``, for tests."""
    for i in range(x.shape[0]):
        t[i] = _tanh(x[i])
        s[i] = _sig(x[i])


@njit(cache=True, fastmath=True, error_model="numpy")
def spmv(W, x, acc, idx):
    """``acc += W^T x`` over the non-zero entries of ``x`` (``W`` int8 codes or float32, ``(n, G)``);
    ``idx`` is scratch of at least ``n`` entries. Returns the number of non-zero entries."""
    n, G = W.shape
    m = 0
    for j in range(n):
        if x[j] != 0.0:
            idx[m] = j
            m += 1
    q = 0
    while q + 4 <= m:
        j0, j1, j2, j3 = idx[q], idx[q + 1], idx[q + 2], idx[q + 3]
        v0, v1, v2, v3 = x[j0], x[j1], x[j2], x[j3]
        r0, r1, r2, r3 = W[j0], W[j1], W[j2], W[j3]
        for i in range(G):
            acc[i] += ((v0 * np.float32(r0[i]) + v1 * np.float32(r1[i]))
                       + (v2 * np.float32(r2[i]) + v3 * np.float32(r3[i])))
        q += 4
    while q < m:
        j = idx[q]
        v = x[j]
        r = W[j]
        for i in range(G):
            acc[i] += v * np.float32(r[i])
        q += 1
    return m


# fastmath without "no NaNs"/"no infinities": a NaN born in the gates must come out as a NaN
FAST_KEEP_NAN = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, fastmath=FAST_KEEP_NAN, error_model="numpy")
def _gates(a_ih, a_hh, s_ih, s_hh, b, c, norm_c, s_c, b_c, thr, h):
    """Scale, shift and activate the four gates, update ``c`` in place, write the pruned ``h`` in
    place (its old value was consumed by ``a_hh``); returns the zeros of ``h``. ``a_hh`` is scratch:
    it receives the gates' pre-activations. Short loops over few arrays each: LLVM vectorizes a loop
    only when a handful of runtime checks rule out overlap between what it writes and reads (one
    loop over all eleven arrays ran scalar)."""
    H = c.shape[0]
    z = a_hh
    for k in range(4 * H):
        z[k] = np.float32(a_ih[k]) * s_ih[k] + z[k] * s_hh[k] + b[k]
    for k in range(H):
        c[k] = _sig(z[H + k]) * c[k] + _sig(z[k]) * _tanh(z[2 * H + k])
    if norm_c:
        for k in range(H):
            h[k] = _sig(z[3 * H + k]) * _tanh(c[k] * s_c[k] + b_c[k])
    else:
        for k in range(H):
            h[k] = _sig(z[3 * H + k]) * _tanh(c[k])
    zeros = 0
    for k in range(H):
        keep = abs(h[k]) >= thr
        h[k] = h[k] if keep else np.float32(0.0)
        zeros += np.int64(not keep)
    return zeros


@njit(cache=True, fastmath=True, error_model="numpy")
def _project(a_hr, s_hr, thr, r):
    """``r = s_hr * a_hr``, zeroed where ``|r| < thr``; returns the zeros of ``r``."""
    zeros = 0
    for i in range(r.shape[0]):
        v = a_hr[i] * s_hr[i]
        keep = abs(v) >= thr
        r[i] = v if keep else np.float32(0.0)
        zeros += np.int64(not keep)
    return zeros


@njit(cache=True, fastmath=True, error_model="numpy")
def _prune(src, thr, dst):
    """``dst = src`` zeroed where ``|src| < thr``; returns the zeros of ``dst``."""
    zeros = 0
    for i in range(src.shape[0]):
        v = src[i]
        keep = abs(v) >= thr
        dst[i] = v if keep else np.float32(0.0)
        zeros += np.int64(not keep)
    return zeros


@njit(cache=True, error_model="numpy")
def _stream_step(F, Q, M, S, N, r, X):
    """Advance stream ``r`` by one step through every layer and the output layer."""
    B = N[N_B]
    t = N[N_T]
    idx = N[N[N_IDX]:]
    tok = N[N[N_TOK] + r]
    x = F[0:0]  # the current layer's input vector
    for k in range(M[L_COUNT]):
        m = M_HEAD + k * M_LAYER
        n = N_HEAD + k * N_LAYER
        n_in, H, R, P = M[m + K_NIN], M[m + K_H], M[m + K_R], M[m + K_P]
        G = 4 * H
        ts = min(t, M[m + K_T] - 1)
        h = S[N[n + S_H] + r * R: N[n + S_H] + (r + 1) * R]  # the state fed back: r (= h without projection)
        c = S[N[n + S_C] + r * H: N[n + S_C] + (r + 1) * H]
        a_hh = S[N[n + S_AHH]: N[n + S_AHH] + G]
        a_hh[:] = 0.0
        codes = M[m + K_CODES] == 1
        if codes:
            spmv(Q[M[m + K_WHH]: M[m + K_WHH] + R * G].reshape((R, G)), h, a_hh, idx)
        else:
            spmv(F[M[m + K_WHH]: M[m + K_WHH] + R * G].reshape((R, G)), h, a_hh, idx)
        s_ih = F[M[m + K_SIH] + ts * G: M[m + K_SIH] + (ts + 1) * G]
        s_hh = F[M[m + K_SHH] + ts * G: M[m + K_SHH] + (ts + 1) * G]
        b = F[M[m + K_B] + ts * G: M[m + K_B] + (ts + 1) * G]
        s_c = F[M[m + K_SC] + ts * H: M[m + K_SC] + (ts + 1) * H]
        b_c = F[M[m + K_BC] + ts * H: M[m + K_BC] + (ts + 1) * H]
        norm_c = M[m + K_NORMC] == 1
        thr = F[M[m + K_THR]]
        dense = M[m + K_DENSE] == 1
        hd = S[N[n + S_HD] + r * R: N[n + S_HD] + (r + 1) * R]  # the unpruned output (dense only)
        # with a projection the gates write the unpruned h into scratch; it is projected and pruned below
        hg = S[N[n + S_HF]: N[n + S_HF] + H] if P > 0 else (hd if dense else h)
        tg = np.float32(0.0) if P > 0 or dense else thr
        kind = M[IN_KIND] if k == 0 else IN_DENSE
        if kind == IN_TABLE:
            o = M[IN_OFF] + tok * G
            z = _gates(F[o: o + G], a_hh, s_ih, s_hh, b, c, norm_c, s_c, b_c, tg, hg)
        elif kind == IN_ONEHOT and codes:
            o = M[m + K_WIH] + tok * G
            z = _gates(Q[o: o + G], a_hh, s_ih, s_hh, b, c, norm_c, s_c, b_c, tg, hg)
        else:
            if k > 0:
                pass  # x is the previous layer's new r
            elif M[IN_KIND] == IN_DENSE:
                x = X[r]
            elif kind == IN_EMBED:
                o = M[IN_OFF] + tok * n_in
                x = F[o: o + n_in]
            else:  # one-hot input to an fp layer: its weight row
                x = F[0:0]
            a_ih = S[N[n + S_AIH]: N[n + S_AIH] + G]
            if k == 0 and kind == IN_ONEHOT:
                o = M[m + K_WIH] + tok * G
                a_ih[:] = F[o: o + G]
            else:
                a_ih[:] = 0.0
                if codes:
                    spmv(Q[M[m + K_WIH]: M[m + K_WIH] + n_in * G].reshape((n_in, G)), x, a_ih, idx)
                else:
                    spmv(F[M[m + K_WIH]: M[m + K_WIH] + n_in * G].reshape((n_in, G)), x, a_ih, idx)
            z = _gates(a_ih, a_hh, s_ih, s_hh, b, c, norm_c, s_c, b_c, tg, hg)
        if P > 0:
            a_hr = S[N[n + S_AHR]: N[n + S_AHR] + P]
            a_hr[:] = 0.0
            if codes:
                spmv(Q[M[m + K_WHR]: M[m + K_WHR] + H * P].reshape((H, P)), hg, a_hr, idx)
            else:
                spmv(F[M[m + K_WHR]: M[m + K_WHR] + H * P].reshape((H, P)), hg, a_hr, idx)
            z = _project(a_hr, F[M[m + K_SHR]: M[m + K_SHR] + P], np.float32(0.0) if dense else thr,
                         hd if dense else h)
        if dense:
            z = _prune(hd, thr, h)
        N[n + S_ZEROS] += z
        N[n + S_TOTAL] += R
        x = hd if dense else h
    V, R = M[OUT_N], x.shape[0]
    if V > 0:
        y = S[N[N_LOGITS] + r * V: N[N_LOGITS] + (r + 1) * V]
        y[:] = F[M[OUT_B]: M[OUT_B] + V]
        spmv(F[M[OUT_W]: M[OUT_W] + R * V].reshape((R, V)), x, y, idx)
    return B


@njit(cache=True, error_model="numpy")
def step(F, Q, M, S, N, X):
    """One step of every stream: token ids in ``N`` from ``N[N_TOK]`` (language models; ``X`` then
    ``(1, 0)``) or features ``X (B, n_in)``; logits ``(B, V)`` land in ``S`` from ``N[N_LOGITS]``."""
    B = N[N_B]
    for r in range(B):
        _stream_step(F, Q, M, S, N, r, X)
    N[N_T] += 1


@njit(cache=True, error_model="numpy")
def steps(F, Q, M, S, N, toks, X, out):
    """``T`` steps: ``toks (T, B)`` ids (language models; ``X`` then ``(1, 1, 0)``) or features ``X
    (T, B, n_in)`` (``toks`` then ``(0, B)``); logits ``(T, B, V)`` into ``out``."""
    B, V = N[N_B], M[OUT_N]
    lo, to = N[N_LOGITS], N[N_TOK]
    for t in range(out.shape[0]):
        if toks.shape[0]:
            for r in range(B):
                N[to + r] = toks[t, r]
        Xt = X[min(t, X.shape[0] - 1)]
        for r in range(B):
            _stream_step(F, Q, M, S, N, r, Xt)
            for v in range(V):
                out[t, r, v] = S[lo + r * V + v]
        N[N_T] += 1


@njit(cache=True, error_model="numpy")
def layer_steps(F, Q, M, S, N, X, out):
    """``T`` steps of a model of one layer direction without output layer (``OUT_N`` 0, as
    ``layout.pack`` makes for a bidirectional model) over features ``X (T, B, n_in)``; each step's
    output ``r (B, R)`` (unpruned with ``K_DENSE``) into ``out (T, B, R)``."""
    B = N[N_B]
    R = M[M_HEAD + K_R]
    o = N[N_HEAD + (S_HD if M[M_HEAD + K_DENSE] == 1 else S_H)]
    for t in range(X.shape[0]):
        for r in range(B):
            _stream_step(F, Q, M, S, N, r, X[t])
            for i in range(R):
                out[t, r, i] = S[o + r * R + i]
        N[N_T] += 1
