"""Fused CPU kernels for the elementwise part of a backward step (no projection).

The backward pass of one step without batch norm is ~15 small tensor ops (the state's gradient, the
pruning mask, the cell's gradient, four gate gradients and their activations' derivatives, the
carried cell gradient), each a separate pass over ``(B, H)`` or ``(B, 4H)`` blocks with its own
dispatch cost; at hidden 256 they cost about as much as the step's matrix product. Here they are one
compiled loop over the step's rows, which reads each saved value once::

    dr  = dout_t + m_h * dh           (m_h: the fed-back state's mask, pruning only that state)
    dr  = m * dr                      (m: the output's mask, pruning the output)
    dct = (1 - u^2) o dr + dc
    dz  = [dct g i(1-i), dct c_{t-1} f(1-f), dct i (1-g^2), dr u o(1-o)]
    dc  = dct f

``dz`` is what the step's ``dz W_hh`` product and the weight gradients read. With batch norm
(``backward_step_bn``) the gradients also pass through the three norms, whose batch statistics make
each column depend on the step's column sums: three row passes with the sums taken between them.
No transcendental is evaluated (the forward pass saved the activations), so LLVM vectorizes the
loops; the forward step, which needs ``exp`` and ``tanh``, stays with torch's vectorized ops. Only
tensors on the CPU use them; ``leanrnn.nn.recurrence`` keeps the tensor-op path for the rest (GPU,
projection), and the tests compare the two. The kernels compile on first use (a few seconds, once:
numba caches them beside this file, or in its user cache where that is read-only).
"""
from __future__ import annotations

import numpy as np
from numba import njit

MASK_NONE, MASK_OUTPUT, MASK_FED = 0, 1, 2


@njit(cache=True, error_model="numpy", inline="always")
def _dr(d, go, gh, fd, mask_h, mask_o, zero):  # pragma: no cover
    """``d = dout + dh``, with the pruned entries' mask on ``dh`` or on the sum."""
    H = d.shape[0]
    if mask_h:
        for k in range(H):
            d[k] = (gh[k] if fd[k] != zero else zero) + go[k]
    elif mask_o:
        for k in range(H):
            d[k] = gh[k] + go[k] if fd[k] != zero else zero
    else:
        for k in range(H):
            d[k] = gh[k] + go[k]


@njit(cache=True, error_model="numpy", inline="always")
def _gates(g_dz, gc, dct, d, a, uu, cp, one):  # pragma: no cover
    """The four gates' gradients (times the activations' derivatives) and the carried ``dc``."""
    H = dct.shape[0]
    for k in range(H):
        gc[k] = dct[k] * a[H + k]
    for k in range(H):
        g_dz[k] = dct[k] * a[2 * H + k] * (a[k] - a[k] * a[k])
    for k in range(H):
        f = a[H + k]
        g_dz[H + k] = dct[k] * cp[k] * (f - f * f)
    for k in range(H):
        g = a[2 * H + k]
        g_dz[2 * H + k] = dct[k] * a[k] * (one - g * g)
    for k in range(H):
        o = a[3 * H + k]
        g_dz[3 * H + k] = d[k] * uu[k] * (o - o * o)


@njit(cache=True, error_model="numpy")
def backward_step(dout, dh, dc, act, u, c, c0, fed, dz, r0, rp, b, mask, masked_rows, one):  # pragma: no cover
    """Step ``t``'s rows ``r0 : r0 + b`` (``rp``: the previous step's first row, ``-1`` at step 0,
    where ``c0`` is the previous cell). ``dh``/``dc`` hold the gradients carried from step ``t + 1``
    and ``dc`` is updated in place. ``mask``: ``MASK_OUTPUT`` zeroes ``dr`` where ``fed`` is zero;
    ``MASK_FED`` zeroes the carried ``dh`` there in the first ``masked_rows`` rows (those the step
    after wrote; the rest come from ``h_n``, which is not pruned). ``one`` is 1 in the arrays' dtype
    (a Python literal would make the arithmetic float64 and stop the loop from vectorizing)."""
    H = u.shape[1]
    zero = one - one
    # Short loops over few arrays each: LLVM vectorizes a loop only when it can rule out overlap
    # between what it writes and reads with a handful of runtime checks.
    d = np.empty(H, u.dtype)
    dct = np.empty(H, u.dtype)
    for j in range(b):
        r = r0 + j
        a, uu = act[r], u[r]
        _dr(d, dout[r], dh[j], fed[r], mask == 2 and j < masked_rows, mask == 1, zero)
        gc = dc[j]
        for k in range(H):
            dct[k] = (one - uu[k] * uu[k]) * a[3 * H + k] * d[k] + gc[k]
        _gates(dz[r], gc, dct, d, a, uu, c0[j] if rp < 0 else c[rp + j], one)


@njit(cache=True, error_model="numpy", inline="always")
def _bn_coefs(s_dn, s_dnx, r, gain, n, train, co_a, co_b, co_c, zero):  # pragma: no cover
    """Batch norm's backward as ``dx = co_a dn - co_b - co_c d`` per column, from the column sums
    of ``dn`` and ``dn d`` (``d = x - mean``, ``r = 1/sqrt(var + eps)``): in training
    ``gain r (dn - mean(dn) - d r^2 mean(dn d))``, in eval ``gain r dn``."""
    for k in range(r.shape[0]):
        gr = gain[k] * r[k]
        co_a[k] = gr
        co_b[k] = gr * s_dn[k] / n if train else zero
        co_c[k] = gr * r[k] * s_dnx[k] * r[k] / n if train else zero


@njit(cache=True, error_model="numpy")
def backward_step_bn(dout, dh, dc, act, u, c, c0, fed, dz, da, dxp, d_c, r_c, g_c, d_hh, r_hh, g_hh, d_ih, r_ih,
                     g_ih, db_c, dg_c, dg_hh, dg_ih, dr, dcn, t, r0, rp, b, mask, masked_rows, train,
                     one):  # pragma: no cover
    """``backward_step`` with the three batch norms (``BN_c`` on the cell before its ``tanh``,
    ``BN_h`` on ``W_hh r``, ``BN_x`` on ``W_ih x``): ``d_*`` are the centred inputs each saved,
    ``r_*[t]`` their ``1/sqrt(var + eps)``, ``g_*`` the gains; the gains' and ``BN_c``'s shift's
    gradients are added to ``dg_*``/``db_c``. Writes the gates' gradient ``dz`` (the bias's),
    ``da`` (that of ``W_hh r``) and ``dxp`` (that of ``W_ih x``). ``dr``/``dcn``: ``(B, H)``
    scratch. Batch statistics (``train``) make each column's gradient depend on the step's
    column sums, taken between the row passes."""
    H = u.shape[1]
    G = 4 * H
    zero = one - one
    n = one * b
    s1, s2 = np.zeros(G, u.dtype), np.zeros(G, u.dtype)
    s3 = np.zeros(G, u.dtype)
    ca, cb, cc = np.empty(G, u.dtype), np.empty(G, u.dtype), np.empty(G, u.dtype)
    ca2, cb2, cc2 = np.empty(G, u.dtype), np.empty(G, u.dtype), np.empty(G, u.dtype)
    for j in range(b):  # the state's and the normalized cell's gradients, and BN_c's column sums
        r = r0 + j
        a, uu, x, dj = act[r], u[r], d_c[r], dcn[j]
        _dr(dr[j], dout[r], dh[j], fed[r], mask == 2 and j < masked_rows, mask == 1, zero)
        for k in range(H):
            dj[k] = (one - uu[k] * uu[k]) * a[3 * H + k] * dr[j, k]
        for k in range(H):
            s1[k] += dj[k]
        for k in range(H):
            s2[k] += dj[k] * x[k]
    rc = r_c[t]
    for k in range(H):
        db_c[k] += s1[k]
        dg_c[k] += s2[k] * rc[k]
    _bn_coefs(s1[:H], s2[:H], rc, g_c, n, train, ca[:H], cb[:H], cc[:H], zero)
    s1[:] = zero
    s2[:] = zero
    for j in range(b):  # the cell's gradient through BN_c, the gates, and their column sums
        r = r0 + j
        dj, x, gz = dcn[j], d_c[r], dz[r]
        for k in range(H):
            dj[k] = ca[k] * dj[k] - cb[k] - cc[k] * x[k] + dc[j, k]
        _gates(gz, dc[j], dj, dr[j], act[r], u[r], c0[j] if rp < 0 else c[rp + j], one)
        xh, xi = d_hh[r], d_ih[r]
        for k in range(G):
            s1[k] += gz[k]
        for k in range(G):
            s2[k] += gz[k] * xh[k]
        for k in range(G):
            s3[k] += gz[k] * xi[k]
    rh, ri = r_hh[t], r_ih[t]
    for k in range(G):
        dg_hh[k] += s2[k] * rh[k]
        dg_ih[k] += s3[k] * ri[k]
    _bn_coefs(s1, s2, rh, g_hh, n, train, ca, cb, cc, zero)
    _bn_coefs(s1, s3, ri, g_ih, n, train, ca2, cb2, cc2, zero)
    for j in range(b):  # the gradients of W_hh r and of W_ih x through BN_h and BN_x
        r = r0 + j
        gz, xh, xi, ga, gx = dz[r], d_hh[r], d_ih[r], da[r], dxp[r]
        for k in range(G):
            ga[k] = ca[k] * gz[k] - cb[k] - cc[k] * xh[k]
        for k in range(G):
            gx[k] = ca2[k] * gz[k] - cb2[k] - cc2[k] * xi[k]
