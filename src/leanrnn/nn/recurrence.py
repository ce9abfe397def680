"""The time loop of one LeanLSTM layer direction, with hand-written backpropagation through time.

Autograd over a Python time loop records ~20 nodes per step and accumulates the ``W_hh`` gradient
with one outer product per step; at hidden 1000 that alone makes training several times slower than
``nn.LSTM``. This module runs the loop without autograd, keeps what the backward pass needs, and in
the backward pass walks the steps in reverse with plain tensor ops, then forms the weight gradients
with one ``(N, 4H)^T (N, R)`` product each.

What stays outside (autograd, one op for all steps): the input projections ``Q(W_ih) x`` (plus the
bias when there is no batch norm) and the straight-through gradients of the quantized matrices.
Inside, step ``t`` computes::

    z_t = BN_x(xp_t) + BN_h(W_hh r_{t-1}) + b
    c_t = sigmoid(f_t) c_{t-1} + sigmoid(i_t) tanh(g_t);  u_t = tanh(BN_c(c_t))
    h_t = sigmoid(o_t) u_t;  r_t = P(W_hr h_t)   (r_t = P(h_t) without projection)

``r_t`` is the output and the state fed back. With ``dense_output`` (pruning only the fed-back state)
the output and ``h_n`` are the states before pruning, and ``P`` is applied where a state enters
``W_hh`` (including a given ``h_0``). Rows follow ``Steps`` (PackedSequence's layout), so
a packed batch only computes the sequences still running. Batch statistics are per step, over those
rows, with the biased variance.

Speed (hidden 256, batch 64, where each step's elementwise work costs as much as its products):

* The batch norms run per step, including ``BN_x``, whose statistics do not depend on the
  recurrence: a step's ``(B, 4H)`` block is in cache there, while the same ops over the whole
  sequence, under autograd, were slower (each pass goes to memory).
* Statistics as ``mean(d * d)`` with ``d = x - mean``: ``torch.var_mean`` over dim 0 is ~50x slower.
* Pruning is one ``hardshrink`` (``|r| > lam`` with ``lam`` the float just below ``theta``, i.e.
  ``|r| >= theta``); the masked gradient tests the output for zeros into a float buffer. Boolean
  masks cost a conversion per use.
* The backward pass forms the activations' derivatives for all four gates in one op
  (``s - s * s``, with the ``tanh`` block overwritten by ``1 - g^2``) and applies them in one more.
* What the backward pass needs (the gates, ``c``, ``u``: ``(N, 4H)`` and ``(N, H)``, tens of MB at
  hidden 256) lives in buffers that are handed back when the backward pass ends and reused by the
  next forward pass (``_Scratch``): a fresh allocation of that size is mapped anew by the C library
  each time, and its first touch costs a page fault per 4 KiB.
* Without projection, on the CPU, the backward step's elementwise work (batch norms included) is
  one fused numba kernel (``leanrnn.nn.fused``; it needs no transcendental, so it vectorizes): 15 to
  40 small ops per step become one call. At hidden 256 that took training from ~0.77x to ~0.86x
  ``nn.LSTM``'s tokens/s with weight norm and 90% pruning, and from 0.50x to 0.61x with per-step
  batch norm, whose backward reads three saved ``(N, 4H)`` blocks from memory per step
  (``benchmarks/bench_train.py``).
* Tried and dropped: a numba kernel per forward step (its scalar ``exp``/``tanh`` were slower than these
  vectorized ops) and ``torch.compile`` of the per-step functions (about 15% faster per step on
  the CPU, after 7 to 25 s of compilation per shape and configuration, and a packed batch changes
  the shape at every step).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .steps import Steps


class Moments(NamedTuple):
    """Per-step mean and (biased) variance, each ``(T, F)``."""
    mean: Tensor
    var: Tensor


class LoopStats(NamedTuple):
    """The statistics of the three batch norms inside the loop."""
    ih: Moments   # of W_ih x_t
    hh: Moments   # of W_hh r_{t-1}
    c: Moments    # of c_t


class LoopConfig(NamedTuple):
    """Non-tensor settings of one call."""
    steps: Steps
    bn_train: bool = False                # batch statistics (training) or ``running``
    running: LoopStats | None = None      # eval-mode statistics, with batch norm
    eps: float = 1e-5
    threshold: Tensor | None = None       # pruning threshold (scalar tensor) or None
    prune_ste: bool = True                # straight-through pruning gradient, else masked
    dense_output: bool = False            # prune only the fed-back state (outputs before pruning)


class _Scratch:
    """A few flat buffers per (dtype, device), reused across training iterations. A buffer taken
    is owned by its taker until ``give`` (only the backward pass gives, after its last use)."""
    KEEP = 8

    def __init__(self):
        self.free: dict[tuple, list[Tensor]] = {}

    def take(self, like: Tensor, *shape: int) -> Tensor:
        n = 1
        for k in shape:
            n *= k
        pool = self.free.get((like.dtype, like.device), [])
        fits = [i for i, b in enumerate(pool) if n <= b.numel() <= 2 * n + 4096]
        if not fits:
            return like.new_empty(shape)
        return pool.pop(min(fits, key=lambda i: pool[i].numel()))[:n].view(shape)

    def give(self, *tensors: Tensor | None) -> None:
        for t in tensors:
            if t is None:
                continue
            base = t._base if t._base is not None else t
            pool = self.free.setdefault((base.dtype, base.device), [])
            pool.append(base.reshape(-1))
            if len(pool) > self.KEEP:
                pool.pop(min(range(len(pool)), key=lambda i: pool[i].numel()))


_SCRATCH = _Scratch()


def _center(x: Tensor, t: int, cfg: LoopConfig, batch: Moments | None, running: Moments | None,
            out: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(x - mean, 1/sqrt(var + eps))`` with step ``t``'s batch statistics (written to ``batch``) in
    training, its running ones in eval."""
    if cfg.bn_train:
        mean = torch.mean(x, 0, out=batch.mean[t])
        d = torch.sub(x, mean, out=out)
        var = torch.mean(d * d, 0, out=batch.var[t])
    else:
        d, var = torch.sub(x, running.mean[t], out=out), running.var[t]
    return d, torch.rsqrt(var + cfg.eps)


def _loop(xp, h0, c0, w, w_hr, bias, g_ih, g_hh, g_c, b_c, cfg: LoopConfig, save: bool):
    steps = cfg.steps
    N, G = xp.shape
    H, T = G // 4, len(steps)
    new = xp.new_empty
    bn, prune, proj = g_hh is not None, cfg.threshold is not None, w_hr is not None
    out = new(N, h0.shape[1])
    hpre = torch.empty_like(out) if prune else None
    st = {}
    if save:
        big = lambda *shape: _SCRATCH.take(xp, *shape)  # noqa: E731  (given back by the backward pass)
        st.update(c=big(N, H), act=big(N, G), u=big(N, H))
        if proj:
            st["hh"] = big(N, H)
        if bn:
            st.update(d_ih=big(N, G), r_ih=new(T, G), d_hh=big(N, G), r_hh=new(T, G), d_c=big(N, H), r_c=new(T, H))
    stats = LoopStats(*(Moments(new(T, n), new(T, n)) for n in (G, G, H))) if bn and cfg.bn_train else None
    run = cfg.running or LoopStats(None, None, None)
    bat = stats or LoopStats(None, None, None)
    if prune:  # keep |r| >= theta: hardshrink keeps |r| > lam, lam the next float below theta
        theta = cfg.threshold.to(xp.dtype)
        lam = float(torch.nextafter(theta, torch.zeros_like(theta)))
    wt = w.t().contiguous()  # a row-major operand: ~10% faster gemm than the transposed view
    hrt = w_hr.t() if proj else None
    h_n, c_n = h0.clone(), c0.clone()
    h, c = h0[: steps.batch], c0[: steps.batch]
    dense = prune and cfg.dense_output
    hd = h  # the state h_n reports: before pruning with dense_output
    if dense:
        h = torch.hardshrink(h, lam)
        st["h0"] = h
    for t, b in enumerate(steps.sizes):
        rows = steps.rows(t)
        if b < h.shape[0]:  # sequences that ended keep their last state
            h_n[b: h.shape[0]], c_n[b: h.shape[0]] = hd[b:], c[b:]
            h, c, hd = h[:b], c[:b], hd[:b]
        if bn:
            d, r = _center(xp[rows], t, cfg, bat.ih, run.ih, st["d_ih"][rows] if save else None)
            z = d * (r * g_ih) if bias is None else torch.addcmul(bias, d, r * g_ih)
            if save:
                st["r_ih"][t] = r
            d, r = _center(torch.mm(h, wt), t, cfg, bat.hh, run.hh, st["d_hh"][rows] if save else None)
            z.addcmul_(d, r * g_hh)
            if save:
                st["r_hh"][t] = r
        else:
            z = torch.addmm(xp[rows], h, wt)
        act = torch.sigmoid(z, out=st["act"][rows]) if save else torch.sigmoid(z)
        torch.tanh(z[:, 2 * H:3 * H], out=act[:, 2 * H:3 * H])
        i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
        c = torch.mul(f, c, out=st["c"][rows]) if save else f * c
        c.addcmul_(i, g)
        if bn:
            d, r = _center(c, t, cfg, bat.c, run.c, st["d_c"][rows] if save else None)
            u = torch.addcmul(b_c, d, r * g_c, out=st["u"][rows] if save else None).tanh_()
            if save:
                st["r_c"][t] = r
        else:
            u = torch.tanh(c, out=st["u"][rows] if save else None)
        if proj:
            hh = torch.mul(o, u, out=st["hh"][rows] if save else None)
            hr = torch.mm(hh, hrt, out=(hpre if prune else out)[rows])
        else:
            hr = torch.mul(o, u, out=(hpre if prune else out)[rows])
        h = torch.hardshrink(hr, lam, out=out[rows]) if prune else hr
        hd = hr if dense else h
    h_n[: h.shape[0]], c_n[: h.shape[0]] = hd, c
    if dense:  # the output is the state before pruning; the pruned one is what was fed back
        return hpre, h_n, c_n, out, stats, st
    return out, h_n, c_n, hpre, stats, st


def _bn_backward(dn: Tensor, d: Tensor, r: Tensor, gamma: Tensor, train: bool, out: Tensor | None = None,
                 dn_sum: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Gradients of ``y = gamma * d * r`` with ``d = x - mean(x)``, ``r = 1/sqrt(var(x) + eps)`` over
    the batch (dim 0), or with fixed statistics in eval: returns ``(dx, dgamma)``.
    In training ``dx = gamma r (dn - mean(dn) - d r^2 mean(dn d))``; ``dn_sum`` is ``dn.sum(0)`` when
    the caller has it."""
    gr = gamma * r
    s_x = (dn * d).sum(0).mul_(r)          # sum over the batch of dn * xhat
    if not train:
        return torch.mul(dn, gr, out=out), s_x
    n = dn.shape[0]
    dx = torch.addcmul(gr * (dn.sum(0) if dn_sum is None else dn_sum) / -n, dn, gr, out=out)
    return dx.addcmul_(d, gr * r * s_x, value=-1.0 / n), s_x


class _Recurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w, w_hr, bias, g_ih, g_hh, g_c, b_c, cfg):
        out, h, c, other, stats, st = _loop(xp, h0, c0, w, w_hr, bias, g_ih, g_hh, g_c, b_c, cfg, save=True)
        ctx.cfg, ctx.st, ctx.has_bias = cfg, st, bias is not None
        fed = other if cfg.dense_output and other is not None else out  # the states fed back
        ctx.save_for_backward(h0, c0, fed, w, w_hr, g_ih, g_hh, g_c)
        aux = [other] if other is not None else []
        aux += [] if stats is None else [x for m in stats for x in m]
        ctx.mark_non_differentiable(*aux)
        return (out, h, c, *aux)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout, dh_n, dc_n, *_):
        h0, c0, out, w, w_hr, g_ih, g_hh, g_c = ctx.saved_tensors  # ``out``: the states fed back
        cfg, st = ctx.cfg, ctx.st
        steps = cfg.steps
        B, H = c0.shape
        bn, train, proj = g_hh is not None, cfg.bn_train, w_hr is not None
        dense = cfg.threshold is not None and cfg.dense_output
        fed0 = st["h0"] if dense else h0
        dh = torch.zeros_like(h0) if dh_n is None else dh_n.clone()
        dc = torch.zeros_like(c0) if dc_n is None else dc_n.clone()
        if dout is None:
            dout = torch.zeros_like(out)
        one = out.new_ones(())
        mask = torch.empty_like(h0) if cfg.threshold is not None and not cfg.prune_ste else None
        # with batch norm the gates' gradients are scratch (the input projections get their own)
        dz_all = _SCRATCH.take(out, *st["act"].shape) if bn else torch.empty_like(st["act"])
        da_all = _SCRATCH.take(out, *st["act"].shape) if bn else dz_all   # gradient of W_hh r_{t-1}
        dxp_all = torch.empty_like(dz_all) if bn else dz_all  # gradient of the input projections
        dr_all = torch.empty_like(out) if proj else None
        if bn:
            dg_ih, dg_hh = torch.zeros_like(g_ih), torch.zeros_like(g_hh)
            dg_c, db_c = torch.zeros_like(g_c), torch.zeros_like(g_c)
        first = len(steps) - 1
        if not proj and _fusable(out):
            norms = (g_ih, g_hh, g_c, dg_ih, dg_hh, dg_c, db_c, da_all, dxp_all, train) if bn else None
            dh, dc = _fused_steps(steps, dout, dh, dc, st, c0, out, fed0, w, dz_all,
                                  None if mask is None else dense, norms)
            first = -1  # the loop below has nothing left to do
        for t in range(first, -1, -1):
            b, rows = steps.sizes[t], steps.rows(t)
            act, u = st["act"][rows], st["u"][rows]
            i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
            dr = dout[rows] + dh[:b]
            if mask is not None and not dense:  # a pruned entry (zero output) passes no gradient
                dr.mul_(torch.ne(out[rows], 0, out=mask[:b]))
            if proj:
                dr_all[rows] = dr
                dr = torch.mm(dr, w_hr)
            dcn = torch.addcmul(one, u, u, value=-1).mul_(o).mul_(dr)
            if bn:
                db_c += dcn.sum(0)
                dcn, dgam = _bn_backward(dcn, st["d_c"][rows], st["r_c"][t], g_c, train)
                dg_c += dgam
            dct = dcn.add_(dc[:b])
            cprev = c0[:b] if t == 0 else st["c"][steps.offsets[t - 1]: steps.offsets[t - 1] + b]
            dz = dz_all[rows]  # the gates' outer gradients, then times the activations' derivatives
            torch.mul(dct, g, out=dz[:, :H])
            torch.mul(dct, cprev, out=dz[:, H:2 * H])
            torch.mul(dct, i, out=dz[:, 2 * H:3 * H])
            torch.mul(dr, u, out=dz[:, 3 * H:])
            deriv = torch.addcmul(act, act, act, value=-1)  # sigmoid' = s (1 - s)
            torch.addcmul(one, g, g, value=-1, out=deriv[:, 2 * H:3 * H])  # tanh' = 1 - g^2
            dz.mul_(deriv)
            dcp = dct.mul_(f)
            if bn:
                dz_sum = dz.sum(0) if train else None
                da, dgam = _bn_backward(dz, st["d_hh"][rows], st["r_hh"][t], g_hh, train, da_all[rows], dz_sum)
                dg_hh += dgam
                _, dgam = _bn_backward(dz, st["d_ih"][rows], st["r_ih"][t], g_ih, train, dxp_all[rows], dz_sum)
                dg_ih += dgam
            else:
                da = dz
            dhp = torch.mm(da, w)
            if mask is not None and dense:  # only the fed-back copy of a pruned entry is zero
                prev = fed0[:b] if t == 0 else out[steps.offsets[t - 1]: steps.offsets[t - 1] + b]
                dhp.mul_(torch.ne(prev, 0, out=mask[:b]))
            if b == B:
                dh, dc = dhp, dcp
            else:
                dh[:b], dc[:b] = dhp, dcp
        dw = torch.mm(da_all.t(), steps.previous(fed0, out))
        dw_hr = torch.mm(dr_all.t(), st["hh"]) if proj else None
        dbias = dz_all.sum(0) if ctx.has_bias else None
        ctx.st = None
        _SCRATCH.give(*(st.get(k) for k in ("c", "act", "u", "hh", "d_ih", "d_hh", "d_c")))
        if bn:
            _SCRATCH.give(dz_all, da_all)
        if not bn:
            return dxp_all, dh, dc, dw, dw_hr, dbias, None, None, None, None, None
        return dxp_all, dh, dc, dw, dw_hr, dbias, dg_ih, dg_hh, dg_c, db_c, None


FUSED_BACKWARD = True  # the fused CPU kernel where it applies (tests compare it with the tensor ops)


def _fusable(x: Tensor) -> bool:
    return FUSED_BACKWARD and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _fused_steps(steps: Steps, dout, dh, dc, st, c0, fed, fed0, w, dz_all, dense: bool | None, norms):
    """The backward time loop without projection on the CPU: per step one fused kernel
    (``leanrnn.nn.fused``) and the ``da W_hh`` product into the carried ``dh``. ``dense``: ``None``
    without a pruning mask, else whether only the fed-back state is pruned. ``norms``: with batch
    norm, ``(g_ih, g_hh, g_c, dg_ih, dg_hh, dg_c, db_c, da_all, dxp_all, train)`` (the ``d*``
    accumulate). Returns ``(dh, dc)``."""
    from . import fused

    dh, dc = dh.contiguous(), dc.contiguous()
    mode = fused.MASK_NONE if dense is None else fused.MASK_FED if dense else fused.MASK_OUTPUT
    npy = lambda *xs: [x.detach().contiguous().numpy() for x in xs]  # noqa: E731
    arrays = npy(dout, dh, dc, st["act"], st["u"], st["c"], c0, fed, dz_all)
    one = arrays[0].dtype.type(1)
    da_all = dz_all
    if norms is not None:
        g_ih, g_hh, g_c, dg_ih, dg_hh, dg_c, db_c, da_all, dxp_all, train = norms
        arrays += npy(da_all, dxp_all, st["d_c"], st["r_c"], g_c, st["d_hh"], st["r_hh"], g_hh, st["d_ih"],
                      st["r_ih"], g_ih, db_c, dg_c, dg_hh, dg_ih, torch.empty_like(c0), torch.empty_like(c0))
    masked = 0
    for t in range(len(steps) - 1, -1, -1):
        b, r0 = steps.sizes[t], steps.offsets[t]
        rp = steps.offsets[t - 1] if t else -1
        if norms is None:
            fused.backward_step(*arrays, r0, rp, b, mode, masked, one)
        else:
            fused.backward_step_bn(*arrays, t, r0, rp, b, mode, masked, train, one)
        torch.mm(da_all[r0: r0 + b], w, out=dh[:b])
        masked = b
    if mode == fused.MASK_FED:  # step 0's product is the gradient of the pruned h_0 that was fed in
        dh.mul_(torch.ne(fed0, 0))
    return dh, dc


def recurrence(xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, cfg: LoopConfig, w_hr: Tensor | None = None,
               bias: Tensor | None = None, g_ih: Tensor | None = None, g_hh: Tensor | None = None,
               g_c: Tensor | None = None, b_c: Tensor | None = None):
    """Run one layer direction over flat rows ``xp`` (``cfg.steps``' layout); returns
    ``out, h_n, c_n, h_pre, stats``.

    ``xp`` are the input projections ``Q(W_ih) x_t`` (with batch norm) or ``xz`` with the bias added
    (without: pass ``bias=None``); ``h0``/``c0`` are ``(B, R)``/``(B, H)``; ``g_ih``, ``g_hh``
    (given with batch norm), ``g_c`` and ``b_c`` the gains and shift of the batch norms. ``h_pre``
    holds the outputs before pruning (``None`` without pruning; with ``cfg.dense_output``, where the
    outputs are those, it holds the pruned states fed back instead); ``stats`` the ``LoopStats`` of a
    training call with batch norm (else ``None``), for the running averages.
    """
    args = (xp, h0, c0, w_hh, w_hr, bias, g_ih, g_hh, g_c, b_c)
    if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in args):
        res = _Recurrence.apply(*args, cfg)
        out, h, c, aux = res[0], res[1], res[2], list(res[3:])
        hpre = aux.pop(0) if cfg.threshold is not None else None
        stats = LoopStats(*(Moments(*aux[k:k + 2]) for k in (0, 2, 4))) if aux else None
    else:
        out, h, c, hpre, stats, _ = _loop(*args, cfg, save=False)
    return out, h, c, hpre, stats
