"""The time loop of one LeanLSTM layer, with hand-written backpropagation through time.

Autograd over a Python time loop records ~20 nodes per step and accumulates the ``W_hh`` gradient
with one outer product per step; at hidden 1000 that alone makes training several times slower than
``nn.LSTM``. This module runs the loop without autograd, keeps what the backward pass needs, and in
the backward pass walks the steps in reverse with plain tensor ops, then forms the weight gradient
with a single ``(T*B, 4H)^T (T*B, H)`` product. The batch norms run per step inside the loop, where
a step's ``(B, 4H)`` block is still in cache, and are folded so that each costs two or three passes.

Inputs are the raw input projections ``xp = x W_ih^T`` of the whole sequence (one matmul, done by
autograd outside) and the already quantized ``W_hh`` (its straight-through gradient is applied by
autograd outside).

A numba kernel fusing each step's elementwise work was tried and dropped: numba's scalar ``exp`` and
``tanh`` made it slower than these vectorized torch ops (674 µs against about 500 µs for a training
step at hidden 256, batch 64). Fusing with torch.compile is the remaining lever.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class LoopConfig:
    """Non-tensor settings of one call."""
    bn: bool = False
    bn_train: bool = False    # batch statistics (training) or the running ones below
    eps: float = 1e-5
    running: Optional[tuple[Tensor, ...]] = None  # (ih_mean, ih_var, hh_mean, hh_var, c_mean, c_var), each (T, F)
    threshold: Optional[Tensor] = None            # pruning threshold (scalar tensor) or None
    prune_ste: bool = True


def _norm(x: Tensor, k: int, t: int, cfg: LoopConfig, stats, out: Optional[Tensor]):
    """Center ``x`` with batch (training) or running statistics ``k``; returns ``(x - mean, rsqrt)``."""
    if cfg.bn_train:
        mean = x.mean(0)
        d = torch.sub(x, mean, out=out)
        var = (d * d).mean(0)
        stats[2 * k][t], stats[2 * k + 1][t] = mean, var
    else:
        d = torch.sub(x, cfg.running[2 * k][t], out=out)
        var = cfg.running[2 * k + 1][t]
    return d, torch.rsqrt(var + cfg.eps)


def _loop(xp, h, c, w, bias, g_ih, g_hh, g_c, b_c, cfg: LoopConfig, save: bool):
    T, B, G = xp.shape
    H = G // 4
    new = xp.new_empty
    out = new(T, B, H)
    prune = cfg.threshold is not None
    hpre = new(T, B, H) if prune else None
    st = {}
    if save:
        st.update(hprev=new(T, B, H), cprev=new(T, B, H), act=new(T, B, G), u=new(T, B, H))
        if prune and not cfg.prune_ste:
            st["mask"] = torch.empty(T, B, H, dtype=torch.bool, device=xp.device)
        if cfg.bn:
            st.update(d_ih=new(T, B, G), r_ih=new(T, G), d_hh=new(T, B, G), r_hh=new(T, G),
                      d_c=new(T, B, H), r_c=new(T, H))
    stats = [new(T, n) for n in (G, G, G, G, H, H)] if cfg.bn and cfg.bn_train else None
    wt = w.t()
    for t in range(T):
        if save:
            st["hprev"][t] = h
            st["cprev"][t] = c
        if cfg.bn:
            d, r = _norm(xp[t], 0, t, cfg, stats, st["d_ih"][t] if save else None)
            z = d * (r * g_ih) if bias is None else torch.addcmul(bias, d, r * g_ih)
            if save:
                st["r_ih"][t] = r
            d, r = _norm(torch.mm(h, wt), 1, t, cfg, stats, st["d_hh"][t] if save else None)
            z.addcmul_(d, r * g_hh)
            if save:
                st["r_hh"][t] = r
        else:
            z = torch.addmm(xp[t] if bias is None else xp[t] + bias, h, wt)
        act = st["act"][t] if save else torch.empty_like(z)
        torch.sigmoid(z, out=act)
        torch.tanh(z[:, 2 * H:3 * H], out=act[:, 2 * H:3 * H])
        i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
        c = torch.addcmul(f * c, i, g)
        if cfg.bn:
            d, r = _norm(c, 2, t, cfg, stats, st["d_c"][t] if save else None)
            u = torch.tanh(torch.addcmul(b_c, d, r * g_c))
            if save:
                st["r_c"][t] = r
        else:
            u = torch.tanh(c)
        hh = o * u
        if save:
            st["u"][t] = u
        if prune:
            hpre[t] = hh
            keep = hh.abs() >= cfg.threshold
            h = torch.where(keep, hh, 0.0)
            if "mask" in st:
                st["mask"][t] = keep
        else:
            h = hh
        out[t] = h
    return out, h, c, hpre, stats, st


def _bn_backward(dn: Tensor, d: Tensor, r: Tensor, gamma: Tensor, train: bool) -> tuple[Tensor, Tensor]:
    """Gradients of ``y = gamma * d * r`` with ``d = x - mean(x)``, ``r = 1/sqrt(var(x) + eps)`` over
    the batch (dim 0), or with fixed statistics in eval: returns ``(dx, dgamma)``."""
    gr = gamma * r
    s_x = (dn * d).sum(0) * r          # sum over the batch of dn * xhat
    dx = dn * gr
    if train:
        n = dn.shape[0]
        dx -= gr * dn.sum(0) / n
        dx = torch.addcmul(dx, d, gr * r * s_x, value=-1.0 / n)
    return dx, s_x


class _Recurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w, bias, g_ih, g_hh, g_c, b_c, cfg):
        out, h, c, hpre, stats, st = _loop(xp, h0, c0, w, bias, g_ih, g_hh, g_c, b_c, cfg, save=True)
        ctx.cfg, ctx.st, ctx.has_bias = cfg, st, bias is not None
        ctx.save_for_backward(w, g_ih, g_hh, g_c)
        aux = [x for x in [hpre] + (stats or []) if x is not None]
        ctx.mark_non_differentiable(*aux)
        return (out, h, c, *aux)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout, dh_n, dc_n, *_):
        w, g_ih, g_hh, g_c = ctx.saved_tensors
        cfg, st = ctx.cfg, ctx.st
        T, B, H = st["u"].shape
        bn, train = cfg.bn, cfg.bn_train
        dh = torch.zeros_like(st["u"][0]) if dh_n is None else dh_n.clone()
        dc = torch.zeros_like(dh) if dc_n is None else dc_n.clone()
        if dout is None:
            dout = torch.zeros_like(st["u"])
        dz_all = torch.empty_like(st["act"])
        dxp_all = torch.empty_like(dz_all) if bn else dz_all
        da_all = torch.empty_like(dz_all) if bn else dz_all
        if bn:
            dg_ih, dg_hh = torch.zeros_like(g_ih), torch.zeros_like(g_hh)
            dg_c, db_c = torch.zeros_like(g_c), torch.zeros_like(g_c)
        for t in range(T - 1, -1, -1):
            act = st["act"][t]
            i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
            u = st["u"][t]
            dht = dout[t] + dh
            if "mask" in st:
                dht = torch.where(st["mask"][t], dht, 0.0)
            dcn = dht * o * (1 - u * u)
            if bn:
                dx, dgam = _bn_backward(dcn, st["d_c"][t], st["r_c"][t], g_c, train)
                dg_c += dgam
                db_c += dcn.sum(0)
                dct = dc + dx
            else:
                dct = dc + dcn
            dz = dz_all[t]
            torch.mul(dct * g, i * (1 - i), out=dz[:, :H])
            torch.mul(dct * st["cprev"][t], f * (1 - f), out=dz[:, H:2 * H])
            torch.mul(dct * i, 1 - g * g, out=dz[:, 2 * H:3 * H])
            torch.mul(dht * u, o * (1 - o), out=dz[:, 3 * H:])
            dc = dct * f
            if bn:
                da, dgam = _bn_backward(dz, st["d_hh"][t], st["r_hh"][t], g_hh, train)
                dg_hh += dgam
                da_all[t] = da
                dx, dgam = _bn_backward(dz, st["d_ih"][t], st["r_ih"][t], g_ih, train)
                dg_ih += dgam
                dxp_all[t] = dx
            else:
                da = dz
            dh = torch.mm(da, w)
        dw = torch.mm(da_all.reshape(T * B, 4 * H).t(), st["hprev"].reshape(T * B, H))
        dbias = dz_all.sum((0, 1)) if ctx.has_bias else None
        ctx.st = None
        if not bn:
            return dxp_all, dh, dc, dw, dbias, None, None, None, None, None
        return dxp_all, dh, dc, dw, dbias, dg_ih, dg_hh, dg_c, db_c, None


def recurrence(xp: Tensor, h0: Tensor, c0: Tensor, w: Tensor, bias: Optional[Tensor] = None,
               g_ih: Optional[Tensor] = None, g_hh: Optional[Tensor] = None, g_c: Optional[Tensor] = None,
               b_c: Optional[Tensor] = None, cfg: Optional[LoopConfig] = None):
    """Run one layer's loop; returns ``out, h_n, c_n, h_pre, bn_stats``.

    ``h_pre`` holds the states before pruning (``None`` without pruning); ``bn_stats`` the per-step
    batch statistics ``(ih_mean, ih_var, hh_mean, hh_var, c_mean, c_var)`` of a training call with
    batch norm (else ``None``), for the running averages.
    """
    cfg = cfg or LoopConfig()
    args = (xp, h0, c0, w, bias, g_ih, g_hh, g_c, b_c)
    if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in args):
        res = _Recurrence.apply(*args, cfg)
        out, h, c, aux = res[0], res[1], res[2], list(res[3:])
        hpre = aux.pop(0) if cfg.threshold is not None else None
        stats = aux or None
    else:
        out, h, c, hpre, stats, _ = _loop(*args, cfg, save=False)
    return out, h, c, hpre, stats
