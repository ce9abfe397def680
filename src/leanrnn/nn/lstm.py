"""LeanLSTM: ``torch.nn.LSTM`` with learned binary/ternary weights, recurrent batch norm and
learned state pruning.

One layer computes, for each step ``t`` (gate order ``i, f, g, o`` as in ``nn.LSTM``)::

    z_t = BN_x(Q(W_ih) x_t) + BN_h(Q(W_hh) r_{t-1}) + b_ih + b_hh
    c_t = sigmoid(f_t) * c_{t-1} + sigmoid(i_t) * tanh(g_t)
    h_t = sigmoid(o_t) * tanh(BN_c(c_t))
    r_t = P(h_t)          or, with proj_size > 0 (LSTMP),  r_t = P(Q(W_hr) h_t)

``r_t`` is the output and the state fed back. ``Q`` is the weight quantizer of ``leanrnn.quant``
(identity for ``weights="fp"``), sampled once per forward pass and shared by every step; ``BN_*`` are
per-time-step batch norms (identity unless ``batch_norm=True``); ``P`` is the state pruner (identity
unless ``state_sparsity > 0``). With ``bidirectional=True`` a second direction with its own weights,
norms and pruner reads each sequence backwards, and the layer's output is both directions' ``r_t``
concatenated, as in ``nn.LSTM``.

Choices, after the ICLR 2019 reference code (see ``leanrnn.quant`` and ``leanrnn.nn.batchnorm``):

* BN of ``W_ih x`` has a gain only, BN of ``W_hh r`` a gain, and the biases ``b_ih + b_hh`` serve as
  the shift; all gains start at 0.1 and the forget-gate bias at 1. ``c_t`` is normalized only where it
  enters the output ``tanh``; the recurrence carries the raw ``c_t``.
* Quantized or batch-normalized layers start from orthogonal latent weights, as in the reference
  (their entries then sit inside ``[-a, a]``); plain fp layers keep ``nn.LSTM``'s initialization.
* BN statistics are indexed from step 0 at every call: a truncated-BPTT segment counts its steps
  from 0 even when the state is carried over, as the reference does. The reverse direction counts
  its own steps (step 0 is a sequence's last element). In a ``PackedSequence`` a step's statistics
  are over the sequences still running.
* ``c_t`` is never pruned: only ``r_t`` feeds the recurrent matrix-vector product. With a projection
  the projected ``r_t`` is pruned (it is what ``W_hh`` reads); ``W_hr h_t`` has no batch norm, as
  ``BN_h`` follows it.
* ``weight_norm=True`` replaces the batch norms: ``z_t = D_ih Q(W_ih) x_t + D_hh Q(W_hh) r_{t-1} + b``
  with ``D = diag(g / ||Q(W)_row||)`` and learned gains ``g`` (Hou et al., NeurIPS 2019), and
  likewise ``D_hr`` for the projection. It keeps the products' scale under control without
  statistics, so one scale per row serves every step.

The parts ``nn.LSTM`` lacks live under ``layers.{k * num_directions + d}`` (``layers.0`` … for a
one-way LSTM). A state_dict without any of them, e.g. a trained ``nn.LSTM``'s, loads strictly: those
parts keep their initial values, and weight-norm gains start at the loaded rows' norms (their
initialization rule), so an fp model with weight norm reproduces the loaded ``nn.LSTM``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ..quant import check_mode, clip_latent_, quantize
from .layer import _Layer, layer_export, row_factor, run_direction
from .steps import Steps

__all__ = ["LeanLSTM", "LeanLSTMCell"]


def _check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _check_args(input_size, hidden_size, bias, weights, state_sparsity, bn_stats, batch_norm, weight_norm,
                num_layers=1, batch_first=False, dropout=0.0, proj_size=0):
    """``nn.LSTM``'s checks (same exception types and messages), then the extra arguments'."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                         "element being zeroed")
    for name, v in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(v, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(v).__name__}")
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                    ("proj_size", proj_size)):
        if not isinstance(v, int):
            raise TypeError(f"{name} should be of type int, got: {type(v).__name__}")
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if v <= 0:
            raise ValueError(f"{name} must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size >= hidden_size:
        raise ValueError("proj_size has to be smaller than hidden_size")
    check_mode(weights)
    if bn_stats not in ("step", "shared"):
        raise ValueError(f"bn_stats={bn_stats!r} is not supported; use 'step' or 'shared'")
    if batch_norm and weight_norm:
        raise ValueError("batch_norm and weight_norm are alternatives; choose one")
    if not isinstance(state_sparsity, (int, float)) or not 0.0 <= state_sparsity < 1.0:
        raise ValueError(f"state_sparsity={state_sparsity!r} must be a number in [0, 1)")


class _LeanBase(nn.Module):
    """Shared configuration, initialization, weight quantization and state_dict loading."""

    def _setup(self, input_size, hidden_size, bias, weights, stochastic, batch_norm, bn_stats, weight_norm,
               state_sparsity, proj_size=0):
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.proj_size = proj_size
        self.bias = bias
        self.weights = weights
        self.stochastic = bool(stochastic)
        self.batch_norm = bool(batch_norm)
        self.bn_stats = bn_stats
        self.weight_norm = bool(weight_norm)
        self.state_sparsity = float(state_sparsity)

    def _new_layer(self, **kw) -> _Layer:
        return _Layer(self.hidden_size, self.proj_size, self.batch_norm, self.bn_stats, self.weight_norm,
                      self.state_sparsity, **kw)

    def _init_params(self) -> None:
        H = self.hidden_size
        with torch.no_grad():
            for w_ih, w_hh, b_ih, b_hh, w_hr in self._all_params():
                if self.weights == "fp" and not self.batch_norm:
                    k = 1.0 / math.sqrt(H)  # nn.LSTM's own initialization
                    for p in (w_ih, w_hh, b_ih, b_hh, w_hr):
                        if p is not None:
                            p.uniform_(-k, k)
                    continue
                for w in (w_ih, w_hh, w_hr):
                    if w is not None:
                        nn.init.orthogonal_(w)
                if b_ih is not None:
                    b_ih.zero_()
                    b_hh.zero_()
                    b_ih[H:2 * H] = 1.0  # forget-gate bias
            for lay, p in zip(self._lean_layers(), self._all_params()):
                for gain, w in zip((lay.wn_ih, lay.wn_hh, lay.wn_hr), (p[0], p[1], p[4])):
                    if gain is not None:  # weight-norm gains start at the latent rows' norms
                        gain.copy_(w.norm(dim=1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # An nn.LSTM state_dict (none of the extra parts) loads strictly: the extra parts keep their
        # initial values. Weight-norm gains a state_dict lacks (an nn.LSTM's, or a run without weight
        # norm given to --init-from) start at the loaded rows' norms, their initialization rule.
        sub = "layers." if hasattr(self, "layers") else "layer."
        fresh = not any(k.startswith(prefix + sub) for k in state_dict)
        names = self._param_names()
        for j, lay in enumerate(self._lean_layers()):
            at = f"{prefix}{sub}{j}." if sub == "layers." else prefix + sub
            if fresh:
                state_dict.update(lay.state_dict(prefix=at))
            for gain, w in (("wn_ih", names[j][0]), ("wn_hh", names[j][1]), ("wn_hr", names[j][4])):
                missing = fresh or at + gain not in state_dict
                if getattr(lay, gain) is not None and prefix + w in state_dict and missing:
                    state_dict[at + gain] = state_dict[prefix + w].norm(dim=1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _all_params(self):
        return [tuple(None if n is None else getattr(self, n) for n in names) for names in self._param_names()]

    @staticmethod
    def _check_state(hx, want: tuple) -> tuple[Tensor, Tensor]:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("hx must be a tuple (h_0, c_0)")
        for name, s, shape in zip(("h_0", "c_0"), hx, want):
            if not isinstance(s, Tensor) or tuple(s.shape) != shape:
                got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"{name} must have shape {shape}, got {got}")
        return hx[0], hx[1]

    def _check_rank(self, input, ranks: tuple[int, int], shapes: str) -> bool:
        """A tensor of one of ``ranks`` with ``input_size`` features; returns whether it is batched."""
        if not isinstance(input, Tensor) or input.dim() not in ranks:
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"input must be {shapes}, got {got}")
        self._check_features(input)
        return input.dim() == ranks[1]

    def _check_features(self, x: Tensor) -> None:
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input.size(-1) must be input_size={self.input_size}, got {x.shape[-1]}")

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
        converges. ``|h| < 1`` bounds the search (with a projection, ``|r_i| < sum_j |W_hr[i, j]|``);
        layers go bottom-up (a layer's input depends on the layers below). The result is the smallest
        threshold found that reaches the target level."""
        was = self.training
        self.eval()
        for lay, p in zip(self._lean_layers(), self._all_params()):
            pruner = lay.pruner
            if not pruner.active:
                continue
            w_hr = self._weight(p[4], lay.wn_hr)
            level, lo, hi = pruner.target_level(), 0.0, 1.0 if w_hr is None else float(w_hr.abs().sum(1).max())
            for _ in range(iters):
                pruner.threshold.fill_((lo + hi) / 2)
                pruner.reset_stats()
                run()
                if pruner.measured() >= level:
                    hi = float(pruner.threshold)
                else:
                    lo = float(pruner.threshold)
            pruner.threshold.fill_(hi)
        self.reset_state_stats()
        self.train(was)

    def _weight(self, w: Tensor | None, gain: Tensor | None) -> Tensor | None:
        """The matrix a step uses: quantized, then (weight normalization) each row scaled to norm ``g``."""
        if w is None:
            return None
        q = quantize(w, self.weights, stochastic=self.stochastic and self.training)
        return q if gain is None else q * row_factor(q, gain).unsqueeze(1)

    def _run(self, j: int, x: Tensor, h: Tensor, c: Tensor, steps: Steps, t0: int = 0):
        """Run layer direction ``j`` (parameters ``_param_names()[j]``) over flat rows."""
        w_ih, w_hh, b_ih, b_hh, w_hr = self._all_params()[j]
        lay = self._lean_layers()[j]
        bias = None if b_ih is None else b_ih + b_hh
        return run_direction(x, h, c, self._weight(w_ih, lay.wn_ih), self._weight(w_hh, lay.wn_hh), bias,
                             self._weight(w_hr, lay.wn_hr), lay, steps, t0, self.training)

    def clip_latent_(self) -> None:
        """Clip every quantized matrix's latent weights to ``[-a, a]`` (after an optimizer step;
        ``leanrnn.quant.clip_latent_``). Full-precision weights are left alone."""
        if self.weights == "fp":
            return
        for mats in self._all_params():
            for w in (mats[0], mats[1], mats[4]):
                if w is not None:
                    clip_latent_(w.data)

    def state_stats(self) -> list[float]:
        """Measured fraction of zeros in the states fed back, per layer direction (``layers``' order),
        since the last reset (``nan`` for one that has run no step or does not prune)."""
        return [lay.pruner.measured() for lay in self._lean_layers()]

    def reset_state_stats(self) -> None:
        for lay in self._lean_layers():
            lay.pruner.reset_stats()

    def quantized_weights(self) -> list[dict]:
        """Per layer direction, in ``h_n``'s order (``k * num_directions + d``): int8 codes and scale of
        each matrix (or fp weights; ``weight_hr`` is ``None`` without projection), the summed bias, the
        batch-norm gains, shifts and running statistics, the pruning threshold, ``layer`` (``k``) and
        ``reverse`` (``d == 1``): all that is needed to reproduce eval-mode outputs without torch."""
        out = []
        D = 2 if getattr(self, "bidirectional", False) else 1
        for j, (lay, (w_ih, w_hh, b_ih, b_hh, w_hr)) in enumerate(zip(self._lean_layers(), self._all_params())):
            bias = None if b_ih is None else b_ih + b_hh
            out.append(layer_export(self.weights, w_ih, w_hh, bias, w_hr, lay, j // D, j % D == 1))
        return out

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
            if not self._lean_layers()[0].prune_output:
                s += ", prune_output=False"
        return s


class LeanLSTM(_LeanBase):
    """Drop-in ``nn.LSTM`` with binary/ternary weights, batch norm and state pruning.

    Takes ``nn.LSTM``'s arguments (``input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional, proj_size, device, dtype``), checks them as it does, takes the same inputs
    (including ``PackedSequence``) and states, and has the same parameter names. Extra arguments:

    weights: ``"fp"``, ``"binary"`` or ``"ternary"``.
    stochastic: sample the quantized weights in training (deterministic rounding in eval regardless).
    batch_norm: batch norm of ``W_ih x``, ``W_hh r`` and ``c`` (see module docstring).
    bn_stats: ``"step"``: running statistics per time step (the paper's); ``"shared"``: one set for
        all steps (time-independent inference, see ``SeqBatchNorm``).
    weight_norm: instead of batch norm, scale each row of the (quantized) matrices to a learned norm
        ``g`` (Hou et al., NeurIPS 2019): no statistics, so training and inference agree and the
        scales fold into one per row.
    state_sparsity: target fraction of zeros in the state fed back, in ``[0, 1)``.
    prune_output: whether the output (and ``h_n``) is the pruned state, as in the DATE paper, so the
        next layer and the output layer skip its zero columns too (default), or the state before
        pruning, so only the recurrent product ``W_hh h_{t-1}`` sees the zeros (a pruned ``h_0`` too).
    bn_momentum, prune_momentum, prune_warmup, prune_grad: see ``SeqBatchNorm`` and ``StatePruner``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None, *, weights: str = "fp", stochastic: bool = True, batch_norm: bool = False,
                 state_sparsity: float = 0.0, bn_stats: str = "step", weight_norm: bool = False,
                 bn_momentum: float = 0.05, prune_momentum: float = 0.1, prune_warmup: int = 0,
                 prune_grad: str = "mask", prune_output: bool = True):
        super().__init__()
        _check_args(input_size, hidden_size, bias, weights, state_sparsity, bn_stats, batch_norm, weight_norm,
                    num_layers, batch_first, dropout, proj_size)
        self._setup(input_size, hidden_size, bias, weights, stochastic, batch_norm, bn_stats, weight_norm,
                    state_sparsity, proj_size)
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        D, G, R = self.num_directions, 4 * hidden_size, proj_size or hidden_size
        for k in range(num_layers):
            for sfx in ("", "_reverse")[:D]:
                n_in = input_size if k == 0 else R * D
                setattr(self, f"weight_ih_l{k}{sfx}", nn.Parameter(torch.empty(G, n_in)))
                setattr(self, f"weight_hh_l{k}{sfx}", nn.Parameter(torch.empty(G, R)))
                for name in (f"bias_ih_l{k}{sfx}", f"bias_hh_l{k}{sfx}"):
                    self.register_parameter(name, nn.Parameter(torch.empty(G)) if bias else None)
                if proj_size:
                    setattr(self, f"weight_hr_l{k}{sfx}", nn.Parameter(torch.empty(proj_size, hidden_size)))
        kw = dict(bn_momentum=bn_momentum, prune_momentum=prune_momentum, prune_warmup=prune_warmup,
                  prune_grad=prune_grad, prune_output=_check_flag("prune_output", prune_output))
        self.layers = nn.ModuleList(self._new_layer(**kw) for _ in range(num_layers * D))
        self._init_params()
        self.to(device=device, dtype=dtype)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _param_names(self) -> list[tuple]:
        """Per layer direction (``k * num_directions + d``): names of ``w_ih, w_hh, b_ih, b_hh, w_hr``."""
        out = []
        for k in range(self.num_layers):
            for sfx in ("", "_reverse")[: self.num_directions]:
                out.append((f"weight_ih_l{k}{sfx}", f"weight_hh_l{k}{sfx}",
                            f"bias_ih_l{k}{sfx}" if self.bias else None, f"bias_hh_l{k}{sfx}" if self.bias else None,
                            f"weight_hr_l{k}{sfx}" if self.proj_size else None))
        return out

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s + ", " + self._extra()

    def forward(self, input, hx: tuple[Tensor, Tensor] | None = None):
        """``nn.LSTM.forward``: ``input`` is ``(T, B, input_size)`` (``(B, T, …)`` with
        ``batch_first``), ``(T, input_size)`` unbatched, or a ``PackedSequence``; returns
        ``output, (h_n, c_n)`` with ``output`` of the same kind."""
        packed = isinstance(input, PackedSequence)
        if packed:
            x, batch_sizes, sorted_idx, unsorted_idx = input
            if x.dim() != 2:
                raise ValueError(f"PackedSequence data must be 2-D (rows, {self.input_size}), got {tuple(x.shape)}")
            self._check_features(x)
            steps, batched = Steps(tuple(batch_sizes.tolist())), True
        else:
            batched = self._check_rank(input, (2, 3), f"2-D (seq, {self.input_size}) unbatched or 3-D batched")
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
            steps = Steps.dense(x.shape[0], x.shape[1])
            x = x.reshape(steps.total, self.input_size)
        B, L, D = steps.batch, self.num_layers, self.num_directions
        H, R = self.hidden_size, self.proj_size or self.hidden_size
        if hx is None:
            h0, c0 = x.new_zeros(L * D, B, R), x.new_zeros(L * D, B, H)
        else:
            h0, c0 = self._check_state(hx, ((L * D, B, R), (L * D, B, H)) if batched else ((L * D, R), (L * D, H)))
            if not batched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            elif packed and sorted_idx is not None:
                h0, c0 = h0.index_select(1, sorted_idx), c0.index_select(1, sorted_idx)
        hs, cs = [], []
        out = x
        for k in range(L):
            outs = []
            for d in range(D):
                j = k * D + d
                xin = steps.reverse(out) if d else out
                y, h, c = self._run(j, xin, h0[j], c0[j], steps)
                outs.append(steps.reverse(y) if d else y)
                hs.append(h)
                cs.append(c)
            out = outs[0] if D == 1 else torch.cat(outs, 1)
            if self.dropout and k < L - 1:
                out = F.dropout(out, self.dropout, self.training)
        h_n, c_n = torch.stack(hs), torch.stack(cs)
        if packed:
            if unsorted_idx is not None:
                h_n, c_n = h_n.index_select(1, unsorted_idx), c_n.index_select(1, unsorted_idx)
            return PackedSequence(out, batch_sizes, sorted_idx, unsorted_idx), (h_n, c_n)
        out = out.view(len(steps), B, D * R)
        if not batched:
            return out.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (out.transpose(0, 1) if self.batch_first else out), (h_n, c_n)


class LeanLSTMCell(_LeanBase):
    """One step of a LeanLSTM layer, with ``nn.LSTMCell``'s arguments, checks, names and shapes.

    ``forward(input, hx=None, t=0)``: ``t`` is the time index that selects the per-step batch-norm
    statistics (ignored without ``batch_norm``).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 weights: str = "fp", stochastic: bool = True, batch_norm: bool = False, state_sparsity: float = 0.0,
                 bn_stats: str = "step", weight_norm: bool = False, bn_momentum: float = 0.05,
                 prune_momentum: float = 0.1, prune_warmup: int = 0, prune_grad: str = "mask",
                 prune_output: bool = True):
        super().__init__()
        bias = bool(bias)  # nn.LSTMCell does not check its type
        _check_args(input_size, hidden_size, bias, weights, state_sparsity, bn_stats, batch_norm, weight_norm)
        self._setup(input_size, hidden_size, bias, weights, stochastic, batch_norm, bn_stats, weight_norm,
                    state_sparsity)
        G = 4 * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(G)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(G)) if bias else None
        self.layer = self._new_layer(bn_momentum=bn_momentum, prune_momentum=prune_momentum,
                                     prune_warmup=prune_warmup, prune_grad=prune_grad,
                                     prune_output=_check_flag("prune_output", prune_output))
        self._init_params()
        self.to(device=device, dtype=dtype)

    def _param_names(self) -> list[tuple]:
        return [("weight_ih", "weight_hh", "bias_ih" if self.bias else None, "bias_hh" if self.bias else None, None)]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False") + ", " + self._extra()

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None, t: int = 0):
        batched = self._check_rank(input, (1, 2), f"1-D ({self.input_size},) or 2-D (batch, {self.input_size})")
        x = input if batched else input.unsqueeze(0)
        B, H = x.shape[0], self.hidden_size
        if hx is None:
            h0 = c0 = x.new_zeros(B, H)
        else:
            h0, c0 = self._check_state(hx, ((B, H), (B, H)) if batched else ((H,), (H,)))
            if not batched:
                h0, c0 = h0.unsqueeze(0), c0.unsqueeze(0)
        _, h, c = self._run(0, x, h0, c0, Steps((B,)), int(t))
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))
