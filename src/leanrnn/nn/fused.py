"""One fused CPU kernel for the elementwise part of a backward step (no batch norm, no projection).

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

``dz`` is what the step's ``dz W_hh`` product and the weight gradients read. No transcendental is
evaluated (the forward pass saved the activations), so LLVM vectorizes the loop; the forward step,
which needs ``exp`` and ``tanh``, stays with torch's vectorized ops. Only tensors on the CPU use it;
``leanrnn.nn.recurrence`` keeps the tensor-op path for the rest (GPU, batch norm, projection) and
tests both against autograd.
"""
from __future__ import annotations

import numpy as np
from numba import njit

MASK_NONE, MASK_OUTPUT, MASK_FED = 0, 1, 2


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
        a, uu, fd, g_dz = act[r], u[r], fed[r], dz[r]
        go, gh, gc = dout[r], dh[j], dc[j]
        cp = c0[j] if rp < 0 else c[rp + j]
        if mask == 2 and j < masked_rows:
            for k in range(H):
                d[k] = (gh[k] if fd[k] != zero else zero) + go[k]
        elif mask == 1:
            for k in range(H):
                d[k] = gh[k] + go[k] if fd[k] != zero else zero
        else:
            for k in range(H):
                d[k] = gh[k] + go[k]
        for k in range(H):
            dct[k] = (one - uu[k] * uu[k]) * a[3 * H + k] * d[k] + gc[k]
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
