"""LeanLSTM: ``torch.nn.LSTM`` with learned binary/ternary weights, recurrent batch norm and
learned state pruning.

One layer computes, for each step ``t`` (gate order ``i, f, g, o`` as in ``nn.LSTM``)::

    z_t = BN_x(Q(W_ih) x_t) + BN_h(Q(W_hh) h_{t-1}) + b_ih + b_hh
    c_t = sigmoid(f_t) * c_{t-1} + sigmoid(i_t) * tanh(g_t)
    h_t = P( sigmoid(o_t) * tanh(BN_c(c_t)) )

``Q`` is the weight quantizer of ``leanrnn.quant`` (identity for ``weights="fp"``), sampled once per
forward pass and shared by every step; ``BN_*`` are per-time-step batch norms (identity unless
``batch_norm=True``); ``P`` is the state pruner (identity unless ``state_sparsity > 0``).

Choices, after the ICLR 2019 reference code (see ``leanrnn.quant`` and ``leanrnn.nn.batchnorm``):

* BN of ``W_ih x`` has a gain only, BN of ``W_hh h`` a gain, and the biases ``b_ih + b_hh`` serve as
  the shift; all gains start at 0.1 and the forget-gate bias at 1. ``c_t`` is normalized only where it
  enters the output ``tanh``; the recurrence carries the raw ``c_t``.
* Quantized or batch-normalized layers start from orthogonal latent weights, as in the reference
  (their entries then sit inside ``[-a, a]``); plain fp layers keep ``nn.LSTM``'s initialization.
* BN statistics are indexed from step 0 at every call: a truncated-BPTT segment counts its steps
  from 0 even when the state is carried over, as the reference does.
* ``c_t`` is never pruned: only ``h_t`` feeds the recurrent matrix-vector product.
* ``weight_norm=True`` replaces the batch norms: ``z_t = D_ih Q(W_ih) x_t + D_hh Q(W_hh) h_{t-1} + b``
  with ``D = diag(g / ||Q(W)_row||)`` and learned gains ``g`` (Hou et al., NeurIPS 2019). It keeps
  the products' scale under control without statistics, so one scale per row serves every step.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..quant import check_mode, codes, glorot_scale, quantize
from .batchnorm import SeqBatchNorm
from .prune import StatePruner
from .recurrence import LoopConfig, recurrence

__all__ = ["LeanLSTM", "LeanLSTMCell"]

_BN_GAMMA = 0.1


def _check_args(input_size, hidden_size, weights, state_sparsity, bn_stats, batch_norm=False, weight_norm=False,
                dropout=0.0, num_layers=1):
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive integer")
    check_mode(weights)
    if bn_stats not in ("step", "shared"):
        raise ValueError(f"bn_stats={bn_stats!r} is not supported; use 'step' or 'shared'")
    if batch_norm and weight_norm:
        raise ValueError("batch_norm and weight_norm are alternatives; choose one")
    if not isinstance(state_sparsity, (int, float)) or not 0.0 <= state_sparsity < 1.0:
        raise ValueError(f"state_sparsity={state_sparsity!r} must be a number in [0, 1)")
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout={dropout!r} must be a number in [0, 1]")


class _Layer(nn.Module):
    """The non-parameter parts of one layer: its batch norms and its state pruner."""

    def __init__(self, hidden_size: int, batch_norm: bool, bn_stats: str, weight_norm: bool, state_sparsity: float,
                 bn_momentum: float, prune_momentum: float, prune_warmup: int, prune_grad: str):
        super().__init__()
        g = 4 * hidden_size
        if weight_norm:  # per-row gains; set to the initial latent rows' norms by _init_params
            self.wn_ih = nn.Parameter(torch.ones(g))
            self.wn_hh = nn.Parameter(torch.ones(g))
        else:
            self.register_parameter("wn_ih", None)
            self.register_parameter("wn_hh", None)
        if batch_norm:
            kw = dict(gamma_init=_BN_GAMMA, momentum=bn_momentum, shared=bn_stats == "shared")
            self.bn_ih = SeqBatchNorm(g, bias=False, **kw)
            self.bn_hh = SeqBatchNorm(g, bias=False, **kw)
            self.bn_c = SeqBatchNorm(hidden_size, bias=True, **kw)
        else:
            self.bn_ih = self.bn_hh = self.bn_c = None
        self.pruner = StatePruner(state_sparsity, momentum=prune_momentum, warmup_steps=prune_warmup,
                                  grad=prune_grad)


def _run_layer(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Optional[Tensor],
               lay: _Layer, t0: int, training: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Run one layer over ``x`` of shape ``(T, B, I)``; returns ``(outputs, h_T, c_T)``."""
    steps = x.shape[0]
    xp = torch.matmul(x, w_ih.t())  # all input projections in one product
    pruner = lay.pruner
    cfg = LoopConfig(threshold=pruner.threshold if pruner.active else None, prune_ste=pruner.grad == "ste")
    bn = () if lay.bn_ih is None else (lay.bn_ih, lay.bn_hh, lay.bn_c)
    if bn:
        cfg.bn, cfg.bn_train, cfg.eps = True, training, lay.bn_hh.eps
        if not training:
            cfg.running = tuple(s for m in bn for s in m.running_stats(t0, steps))
    gains = (bn[0].weight, bn[1].weight, bn[2].weight, bn[2].bias) if bn else ()
    out, h, c, hpre, stats = recurrence(xp, h, c, w_hh, bias, *gains, cfg=cfg)
    if stats is not None:
        for k, m in enumerate(bn):
            m.track(stats[2 * k], stats[2 * k + 1], t0)
    if pruner.active and training:
        pruner.update(hpre, out)
    pruner.record(out)
    return out, h, c


def _row_factor(q: Tensor, gain: Tensor) -> Tensor:
    """Weight normalization's per-row factor ``g / ||q_row||`` (a zero row stays zero)."""
    return gain / q.norm(dim=1).clamp_min(1e-12)


def _layer_export(weights: str, w_ih: Tensor, w_hh: Tensor, bias: Optional[Tensor], lay: _Layer) -> dict:
    def mat(w, gain):
        w = w.detach()
        if weights == "fp":
            return {"weight": (w if gain is None else w * _row_factor(w, gain.detach()).unsqueeze(1)).cpu().clone()}
        q, a = codes(w, weights)
        if gain is None:
            return {"codes": q.cpu(), "scale": a}
        # weight normalization folds into one scale per row: a * g / ||a q_row||
        return {"codes": q.cpu(), "scale": (a * _row_factor(q.to(w.dtype) * a, gain.detach())).cpu().clone()}

    d = {"weights": weights, "weight_ih": mat(w_ih, lay.wn_ih), "weight_hh": mat(w_hh, lay.wn_hh),
         "bias": None if bias is None else bias.detach().cpu().clone(),
         "prune_threshold": float(lay.pruner.threshold) if lay.pruner.active else 0.0,
         "batch_norm": None}
    if lay.bn_ih is not None:
        d["batch_norm"] = {
            name: {"gamma": m.weight.detach().cpu().clone(),
                   "beta": None if m.bias is None else m.bias.detach().cpu().clone(),
                   "running_mean": m.running_mean.cpu().clone(), "running_var": m.running_var.cpu().clone(),
                   "eps": m.eps}
            for name, m in (("ih", lay.bn_ih), ("hh", lay.bn_hh), ("c", lay.bn_c))}
    return d


class _LeanBase(nn.Module):
    """Shared configuration, initialization and weight quantization."""

    def _setup(self, input_size, hidden_size, bias, weights, stochastic, batch_norm, bn_stats, weight_norm,
               state_sparsity, bn_momentum, prune_momentum, prune_warmup, prune_grad):
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        self.weights = weights
        self.stochastic = bool(stochastic)
        self.batch_norm = bool(batch_norm)
        self.bn_stats = bn_stats
        self.weight_norm = bool(weight_norm)
        self.state_sparsity = float(state_sparsity)
        self._layer_kw = dict(batch_norm=self.batch_norm, bn_stats=bn_stats, weight_norm=self.weight_norm,
                              state_sparsity=self.state_sparsity,
                              bn_momentum=bn_momentum, prune_momentum=prune_momentum,
                              prune_warmup=prune_warmup, prune_grad=prune_grad)

    def _init_params(self, params: list[tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]]) -> None:
        H = self.hidden_size
        with torch.no_grad():
            for w_ih, w_hh, b_ih, b_hh in params:
                if self.weights == "fp" and not self.batch_norm:
                    k = 1.0 / math.sqrt(H)  # nn.LSTM's own initialization
                    for p in (w_ih, w_hh, b_ih, b_hh):
                        if p is not None:
                            p.uniform_(-k, k)
                    continue
                nn.init.orthogonal_(w_ih)
                nn.init.orthogonal_(w_hh)
                if b_ih is not None:
                    b_ih.zero_()
                    b_hh.zero_()
                    b_ih[H:2 * H] = 1.0  # forget-gate bias

    def _check_input(self, input, ranks: tuple[int, int], shapes: str) -> bool:
        """Validate rank and feature size; returns whether the input is batched."""
        if not isinstance(input, Tensor) or input.dim() not in ranks:
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"input must be {shapes}, got {got}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input.size(-1) must be input_size={self.input_size}, got {input.shape[-1]}")
        return input.dim() == ranks[1]

    @staticmethod
    def _check_state(hx, want: tuple) -> tuple[Tensor, Tensor]:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("hx must be a tuple (h_0, c_0)")
        for name, s in zip(("h_0", "c_0"), hx):
            if tuple(s.shape) != want:
                raise ValueError(f"{name} must have shape {want}, got {tuple(s.shape)}")
        return hx[0], hx[1]

    def _lean_layers(self) -> list[_Layer]:
        return list(self.layers) if hasattr(self, "layers") else [self.layer]

    def set_prune_ramp(self, ramp: float) -> None:
        """Scale every layer's zero-state target by ``ramp`` in [0, 1] (a gradual pruning schedule)."""
        for lay in self._lean_layers():
            lay.pruner.ramp = float(ramp)

    @torch.no_grad()
    def calibrate_pruning(self, run: Callable[[], object], iters: int = 14) -> None:
        """Set each layer's pruning threshold so that the eval-mode model has the target's zeros.

        ``run()`` makes eval-mode forward passes over calibration data. A threshold changes the states
        it is measured on (fewer states fed back, smaller ones next), so a quantile of one pass
        oscillates; the measured fraction of zeros rises with the threshold, so bisection on it
        converges. ``|h| < 1`` bounds the search; layers go bottom-up (a layer's input depends on the
        layers below). The result is the smallest threshold found that reaches the target level."""
        was = self.training
        self.eval()
        for lay in self._lean_layers():
            p = lay.pruner
            if not p.active:
                continue
            level, lo, hi = p.target_level(), 0.0, 1.0
            for _ in range(iters):
                p.threshold.fill_((lo + hi) / 2)
                p.reset_stats()
                run()
                if p.measured() >= level:
                    hi = float(p.threshold)
                else:
                    lo = float(p.threshold)
            p.threshold.fill_(hi)
        self.reset_state_stats()
        self.train(was)

    def _quantize(self, w: Tensor) -> Tensor:
        return quantize(w, self.weights, stochastic=self.stochastic and self.training)

    def _weight(self, w: Tensor, gain: Optional[Tensor]) -> Tensor:
        """The matrix a step uses: quantized, then (weight normalization) each row scaled to norm ``g``."""
        q = self._quantize(w)
        return q if gain is None else q * _row_factor(q, gain).unsqueeze(1)

    @torch.no_grad()
    def _init_gains(self) -> None:
        """Weight-normalization gains start at the initial latent rows' norms (the fp scale)."""
        for lay, (w_ih, w_hh, _, _) in zip(self._lean_layers(), self._all_params()):
            if lay.wn_ih is not None:
                lay.wn_ih.copy_(w_ih.norm(dim=1))
                lay.wn_hh.copy_(w_hh.norm(dim=1))

    def _extra(self) -> str:
        s = f"weights={self.weights!r}"
        if self.weights != "fp":
            s += f", stochastic={self.stochastic}"
        if self.weight_norm:
            s += ", weight_norm=True"
        if self.batch_norm:
            s += ", batch_norm=True" + (", bn_stats='shared'" if self.bn_stats == "shared" else "")
        if self.state_sparsity:
            s += f", state_sparsity={self.state_sparsity}"
        return s


class LeanLSTM(_LeanBase):
    """Drop-in ``nn.LSTM`` with binary/ternary weights, batch norm and state pruning.

    Takes ``nn.LSTM``'s arguments (``input_size, hidden_size, num_layers, bias, batch_first,
    dropout``) and shapes, and loads an ``nn.LSTM`` state_dict. Extra arguments:

    weights: ``"fp"``, ``"binary"`` or ``"ternary"``.
    stochastic: sample the quantized weights in training (deterministic rounding in eval regardless).
    batch_norm: batch norm of ``W_ih x``, ``W_hh h`` and ``c`` (see module docstring).
    bn_stats: ``"step"``: running statistics per time step (the paper's); ``"shared"``: one set for
        all steps (time-independent inference, see ``SeqBatchNorm``).
    weight_norm: instead of batch norm, scale each row of the (quantized) ``W_ih`` and ``W_hh`` to a
        learned norm ``g`` (Hou et al., NeurIPS 2019): no statistics, so training and inference agree
        and the scales fold into one per row.
    state_sparsity: target fraction of zeros in the hidden state fed back, in ``[0, 1)``.
    bn_momentum, prune_momentum, prune_warmup, prune_grad: see ``SeqBatchNorm`` and ``StatePruner``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, weights: str = "fp",
                 stochastic: bool = True, batch_norm: bool = False, state_sparsity: float = 0.0, *,
                 bn_stats: str = "step", weight_norm: bool = False, bn_momentum: float = 0.05,
                 prune_momentum: float = 0.1, prune_warmup: int = 0, prune_grad: str = "mask"):
        super().__init__()
        _check_args(input_size, hidden_size, weights, state_sparsity, bn_stats, batch_norm, weight_norm, dropout,
                    num_layers)
        self._setup(input_size, hidden_size, bias, weights, stochastic, batch_norm, bn_stats, weight_norm,
                    state_sparsity,
                    bn_momentum, prune_momentum, prune_warmup, prune_grad)
        self.num_layers = num_layers
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        G = 4 * hidden_size
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", nn.Parameter(torch.empty(G, n_in)))
            setattr(self, f"weight_hh_l{k}", nn.Parameter(torch.empty(G, hidden_size)))
            if self.bias:
                setattr(self, f"bias_ih_l{k}", nn.Parameter(torch.empty(G)))
                setattr(self, f"bias_hh_l{k}", nn.Parameter(torch.empty(G)))
            else:
                self.register_parameter(f"bias_ih_l{k}", None)
                self.register_parameter(f"bias_hh_l{k}", None)
        self.layers = nn.ModuleList(_Layer(hidden_size, **self._layer_kw) for _ in range(num_layers))
        self._init_params(self._all_params())
        self._init_gains()

    def _all_params(self):
        return [self._params(k) for k in range(self.num_layers)]

    def _params(self, k: int):
        return (getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"),
                getattr(self, f"bias_ih_l{k}"), getattr(self, f"bias_hh_l{k}"))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + ", " + self._extra()

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None):
        batched = self._check_input(input, (2, 3), f"2-D (seq, {self.input_size}) unbatched or 3-D batched")
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        B = x.shape[1]
        L, H = self.num_layers, self.hidden_size
        if hx is None:
            h0 = c0 = x.new_zeros(L, B, H)
        else:
            h0, c0 = self._check_state(hx, (L, B, H) if batched else (L, H))
            if not batched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        hs, cs = [], []
        out = x
        for k in range(L):
            w_ih, w_hh, b_ih, b_hh = self._params(k)
            bias = None if b_ih is None else b_ih + b_hh
            lay = self.layers[k]
            out, h, c = _run_layer(out, h0[k], c0[k], self._weight(w_ih, lay.wn_ih), self._weight(w_hh, lay.wn_hh),
                                   bias, lay, 0, self.training)
            hs.append(h)
            cs.append(c)
            if self.dropout and k < L - 1:
                out = F.dropout(out, self.dropout, self.training)
        h_n, c_n = torch.stack(hs), torch.stack(cs)
        if batched:
            if self.batch_first:
                out = out.transpose(0, 1)
        else:
            out, h_n, c_n = out.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
        return out, (h_n, c_n)

    # -- introspection ----------------------------------------------------------------------------
    def state_stats(self) -> list[float]:
        """Measured fraction of zeros in the hidden states fed back, per layer, since the last reset
        (``nan`` for a layer that has run no step or does not prune)."""
        return [lay.pruner.measured() for lay in self.layers]

    def reset_state_stats(self) -> None:
        for lay in self.layers:
            lay.pruner.reset_stats()

    def quantized_weights(self) -> list[dict]:
        """Per layer: int8 codes and scale of each matrix (or fp weights), the summed bias, the
        batch-norm gains, shifts and running statistics, and the pruning threshold: all that is
        needed to reproduce eval-mode outputs without torch."""
        out = []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._params(k)
            bias = None if b_ih is None else b_ih + b_hh
            out.append(_layer_export(self.weights, w_ih, w_hh, bias, self.layers[k]))
        return out


class LeanLSTMCell(_LeanBase):
    """One step of a LeanLSTM layer, with ``nn.LSTMCell``'s arguments, names and shapes.

    ``forward(input, hx=None, t=0)``: ``t`` is the time index that selects the per-step batch-norm
    statistics (ignored without ``batch_norm``).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, weights: str = "fp",
                 stochastic: bool = True, batch_norm: bool = False, state_sparsity: float = 0.0, *,
                 bn_stats: str = "step", weight_norm: bool = False, bn_momentum: float = 0.05,
                 prune_momentum: float = 0.1, prune_warmup: int = 0, prune_grad: str = "mask"):
        super().__init__()
        _check_args(input_size, hidden_size, weights, state_sparsity, bn_stats, batch_norm, weight_norm)
        self._setup(input_size, hidden_size, bias, weights, stochastic, batch_norm, bn_stats, weight_norm,
                    state_sparsity,
                    bn_momentum, prune_momentum, prune_warmup, prune_grad)
        G = 4 * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(G)) if self.bias else None
        self.bias_hh = nn.Parameter(torch.empty(G)) if self.bias else None
        self.layer = _Layer(hidden_size, **self._layer_kw)
        self._init_params(self._all_params())
        self._init_gains()

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False") + ", " + self._extra()

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None, t: int = 0):
        batched = self._check_input(input, (1, 2), f"1-D ({self.input_size},) or 2-D (batch, {self.input_size})")
        x = input if batched else input.unsqueeze(0)
        B = x.shape[0]
        if hx is None:
            h0 = c0 = x.new_zeros(B, self.hidden_size)
        else:
            h0, c0 = self._check_state(hx, (B, self.hidden_size) if batched else (self.hidden_size,))
            if not batched:
                h0, c0 = h0.unsqueeze(0), c0.unsqueeze(0)
        bias = None if self.bias_ih is None else self.bias_ih + self.bias_hh
        lay = self.layer
        _, h, c = _run_layer(x.unsqueeze(0), h0, c0, self._weight(self.weight_ih, lay.wn_ih),
                             self._weight(self.weight_hh, lay.wn_hh), bias, lay, int(t), self.training)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))

    def _all_params(self):
        return [(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)]

    def state_stats(self) -> list[float]:
        return [self.layer.pruner.measured()]

    def reset_state_stats(self) -> None:
        self.layer.pruner.reset_stats()

    def quantized_weights(self) -> list[dict]:
        bias = None if self.bias_ih is None else self.bias_ih + self.bias_hh
        return [_layer_export(self.weights, self.weight_ih, self.weight_hh, bias, self.layer)]
