"""One direction of one LeanLSTM layer: its extra parts (batch norms, weight-norm gains, state pruner),
its forward pass over a sequence, and its export dict."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..quant import codes
from .batchnorm import SeqBatchNorm
from .prune import StatePruner
from .recurrence import LoopConfig, LoopStats, Moments, recurrence
from .steps import Steps

_BN_GAMMA = 0.1


class _Layer(nn.Module):
    """The parts of one layer direction that ``nn.LSTM`` lacks: batch norms, weight-norm gains and the
    state pruner. They stay at their initial values when an ``nn.LSTM`` state_dict is loaded."""

    def __init__(self, hidden_size: int, proj_size: int, batch_norm: bool, bn_stats: str, weight_norm: bool,
                 state_sparsity: float, bn_momentum: float, prune_momentum: float, prune_warmup: int,
                 prune_grad: str, prune_output: bool = True):
        super().__init__()
        self.prune_output = bool(prune_output)
        g = 4 * hidden_size
        for name, rows in (("wn_ih", g), ("wn_hh", g), ("wn_hr", proj_size)):
            # per-row gains; set to the initial latent rows' norms by _init_gains
            if weight_norm and rows:
                setattr(self, name, nn.Parameter(torch.ones(rows)))
            else:
                self.register_parameter(name, None)
        if batch_norm:
            kw = dict(gamma_init=_BN_GAMMA, momentum=bn_momentum, shared=bn_stats == "shared")
            self.bn_ih = SeqBatchNorm(g, bias=False, **kw)
            self.bn_hh = SeqBatchNorm(g, bias=False, **kw)
            self.bn_c = SeqBatchNorm(hidden_size, bias=True, **kw)
        else:
            self.bn_ih = self.bn_hh = self.bn_c = None
        self.pruner = StatePruner(state_sparsity, momentum=prune_momentum, warmup_steps=prune_warmup,
                                  grad=prune_grad)


def run_direction(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor | None,
                  w_hr: Tensor | None, lay: _Layer, steps: Steps, t0: int, training: bool):
    """Run one layer direction over flat rows ``x`` (``steps``' layout) with the matrices as used
    (quantized, weight-normalized); returns ``(outputs, h_n, c_n)``."""
    pruner = lay.pruner
    threshold = pruner.threshold if pruner.active else None
    prune_ste = pruner.grad == "ste"
    dense = pruner.active and not lay.prune_output
    if lay.bn_ih is None:
        xz = torch.matmul(x, w_ih.t()) if bias is None else torch.addmm(bias, x, w_ih.t())
        cfg = LoopConfig(steps, threshold=threshold, prune_ste=prune_ste, dense_output=dense)
        out, h, c, hpre, stats = recurrence(xz, h, c, w_hh, cfg, w_hr)
    else:  # the batch norms run inside the loop, on each step's block while it is in cache
        norms = (lay.bn_ih, lay.bn_hh, lay.bn_c)
        running = None if training else LoopStats(*(Moments(*m.running_stats(t0, len(steps))) for m in norms))
        cfg = LoopConfig(steps, bn_train=training, running=running, eps=lay.bn_hh.eps, threshold=threshold,
                         prune_ste=prune_ste, dense_output=dense)
        out, h, c, hpre, stats = recurrence(torch.matmul(x, w_ih.t()), h, c, w_hh, cfg, w_hr, bias, lay.bn_ih.weight,
                                            lay.bn_hh.weight, lay.bn_c.weight, lay.bn_c.bias)
    if stats is not None:
        for m, moments in zip(norms, stats):
            m.track(*moments, t0)
    pre, fed = (out, hpre) if dense else (hpre, out)
    zeros = fed.numel() - torch.count_nonzero(fed)
    if pruner.active and training:
        pruner.update(pre, fed, zeros)
    pruner.record(fed, zeros)
    return out, h, c


def row_factor(q: Tensor, gain: Tensor) -> Tensor:
    """Weight normalization's per-row factor ``g / ||q_row||``. An all-zero row (a ternary row can be
    one) gets factor 0: it stays zero, and passes no gradient rather than one scaled by ``g / eps``."""
    n = q.norm(dim=1)
    return torch.where(n > 0, gain / n.clamp_min(1e-30), 0.0)


def layer_export(weights: str, w_ih: Tensor, w_hh: Tensor, bias: Tensor | None, w_hr: Tensor | None,
                 lay: _Layer, layer: int, reverse: bool) -> dict:
    def mat(w, gain):
        w = w.detach()
        if weights == "fp":
            return {"weight": (w if gain is None else w * row_factor(w, gain.detach()).unsqueeze(1)).cpu().clone()}
        q, a = codes(w, weights)
        if gain is None:
            return {"codes": q.cpu(), "scale": a}
        # weight normalization folds into one scale per row: a * g / ||a q_row||
        return {"codes": q.cpu(), "scale": (a * row_factor(q.to(w.dtype) * a, gain.detach())).cpu().clone()}

    d = {"weights": weights, "layer": layer, "reverse": reverse,
         "weight_ih": mat(w_ih, lay.wn_ih), "weight_hh": mat(w_hh, lay.wn_hh),
         "weight_hr": None if w_hr is None else mat(w_hr, lay.wn_hr),
         "bias": None if bias is None else bias.detach().cpu().clone(),
         "prune_threshold": float(lay.pruner.threshold) if lay.pruner.active else 0.0,
         "prune_output": lay.prune_output,
         "batch_norm": None}
    if lay.bn_ih is not None:
        d["batch_norm"] = {
            name: {"gamma": m.weight.detach().cpu().clone(),
                   "beta": None if m.bias is None else m.bias.detach().cpu().clone(),
                   "running_mean": m.running_mean.cpu().clone(), "running_var": m.running_var.cpu().clone(),
                   "eps": m.eps}
            for name, m in (("ih", lay.bn_ih), ("hh", lay.bn_hh), ("c", lay.bn_c))}
    return d
