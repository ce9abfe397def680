"""Binary and ternary weight quantizers with straight-through gradients.

The rules follow Ardakani et al., "Learning Recurrent Binary/Ternary Weights" (ICLR 2019) and the
authors' reference code:

* **Scale.** Each matrix has one fixed scale ``a = sqrt(6 / (fan_in + fan_out)) / 2``: half of the
  Glorot-uniform bound of that matrix (for an LSTM matrix, ``fan_out`` counts all four gates). It is
  not learned; with batch normalization after the product its value barely matters.
* **Binary, stochastic (training).** ``+a`` with probability ``p = clip((w/a + 1)/2, 0, 1)`` (the
  "hard sigmoid"), else ``-a``.  ``E[w_b] = clip(w, -a, a)``.
* **Binary, deterministic (inference).** ``+a`` if ``w >= 0`` else ``-a``.
* **Ternary, stochastic (training).** ``sign(w) * a`` with probability ``p = clip(|w|/a, 0, 1)``,
  else ``0``.  ``E[w_t] = clip(w, -a, a)``.
* **Ternary, deterministic (inference).** ``+a`` if ``w > a/3``, ``-a`` if ``w <= -a/3``, else
  ``0``.  The reference code thresholds at ``a/3``, not ``a/2``; we keep its choice.
* **Gradient.** The identity straight-through estimator: ``dL/dw = dL/dw_q``. The reference code
  neither cancels the gradient outside ``[-a, a]`` nor clips the latent weights, so by default
  neither do we.
* **Clipping the latent weights** (``clip_latent_``, optional, BinaryConnect's rule): after each
  optimizer step ``w <- clip(w, -a, a)``. Beyond ``a`` a latent weight always samples ``sign(w) a``
  and an update must first travel back to ``a`` before it changes anything; the clip keeps every
  weight where sampling still follows it.

* **Fitting a trained fp matrix** (``ternary_fit``, for fine-tuning an fp model into ternary
  weights). A trained fp LSTM's weights lie mostly far beyond ``a`` (std ~10 ``a``), so they would
  ternarize to ``sign(w) a`` with almost no zeros: a binary sign pattern, not a ternary
  approximation. Where a normalization follows the product, the matrix's scale is free, and the
  loaded matrix is scaled so that ``0.7 mean|w|`` falls on the threshold ``a/3``: the threshold rule
  of ternary weight networks (Li & Liu 2016, ``Delta ~ 0.7 E|W|``).

A quantizer returns a tensor of the same dtype whose values are exactly ``{-a, +a}`` or
``{-a, 0, +a}``; ``codes()`` returns the matching int8 codes for export.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "WEIGHT_MODES",
    "WEIGHT_BITS",
    "glorot_scale",
    "binarize",
    "ternarize",
    "ternary_fit",
    "clip_latent_",
    "quantize",
    "codes",
    "check_mode",
]

from ..facts import WEIGHT_BITS, WEIGHT_MODES


def check_mode(weights: str) -> str:
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights={weights!r} is not supported; use one of {', '.join(map(repr, WEIGHT_MODES))}")
    return weights


def glorot_scale(w: Tensor) -> float:
    """The fixed per-matrix scale ``a``: half the Glorot-uniform bound of a 2-D weight."""
    if w.dim() != 2:
        raise ValueError(f"expected a 2-D weight matrix, got shape {tuple(w.shape)}")
    return 0.5 * math.sqrt(6.0 / (w.shape[0] + w.shape[1]))


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized values, exactly. Backward: the gradient, unchanged, to ``w``."""

    @staticmethod
    def forward(ctx, w: Tensor, q: Tensor) -> Tensor:
        return q

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


def _ste(w: Tensor, q: Tensor) -> Tensor:
    # ``w + (q - w).detach()`` would round q off the exact {-a, 0, a} grid.
    return _StraightThrough.apply(w, q) if w.requires_grad else q


def _scale(w: Tensor, scale: float | None) -> float:
    a = glorot_scale(w) if scale is None else float(scale)
    if not a > 0:
        raise ValueError(f"scale must be > 0, got {a}")
    return a


def binarize(w: Tensor, stochastic: bool = False, scale: float | None = None,
             generator: torch.Generator | None = None) -> Tensor:
    """Weights in ``{-a, +a}``; stochastic sampling is unbiased for ``clip(w, -a, a)``."""
    a = _scale(w, scale)
    with torch.no_grad():
        if stochastic:
            p = ((w / a + 1.0) * 0.5).clamp_(0.0, 1.0)
            pos = torch.rand(w.shape, generator=generator, device=w.device, dtype=w.dtype) < p
        else:
            pos = w >= 0
        q = torch.where(pos, a, -a).to(w.dtype)
    return _ste(w, q)


def ternarize(w: Tensor, stochastic: bool = False, scale: float | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    """Weights in ``{-a, 0, +a}``; stochastic sampling is unbiased for ``clip(w, -a, a)``."""
    a = _scale(w, scale)
    with torch.no_grad():
        if stochastic:
            p = (w.abs() / a).clamp_(max=1.0)
            keep = torch.rand(w.shape, generator=generator, device=w.device, dtype=w.dtype) < p
            q = torch.where(keep, torch.sign(w) * a, torch.zeros((), dtype=w.dtype, device=w.device))
        else:
            q = ((w > a / 3).to(w.dtype) - (w <= -a / 3).to(w.dtype)) * a
    return _ste(w, q)


def ternary_fit(w: Tensor) -> float:
    """The factor that puts ``0.7 mean|w|`` of a 2-D weight on the ternary threshold ``a/3``."""
    m = float(w.detach().abs().mean())
    if not m > 0:
        raise ValueError("cannot fit an all-zero matrix")
    return glorot_scale(w) / 3.0 / (0.7 * m)


@torch.no_grad()
def clip_latent_(w: Tensor) -> Tensor:
    """Clip a latent 2-D weight in place to ``[-a, a]``, its quantizer's range (returns ``w``)."""
    a = glorot_scale(w)
    return w.clamp_(-a, a)


_QUANTIZERS: dict[str, Callable[..., Tensor]] = {"binary": binarize, "ternary": ternarize}


def quantize(w: Tensor, weights: str, stochastic: bool = False,
             generator: torch.Generator | None = None) -> Tensor:
    """Dispatch on the weight mode; ``"fp"`` returns ``w`` unchanged."""
    if check_mode(weights) == "fp":
        return w
    return _QUANTIZERS[weights](w, stochastic=stochastic, generator=generator)


def codes(w: Tensor, weights: str) -> tuple[Tensor, float]:
    """Deterministic int8 codes (``{-1,+1}`` or ``{-1,0,+1}``) and the scale ``a`` of a latent weight."""
    if check_mode(weights) == "fp":
        raise ValueError("weights='fp' has no integer codes; use 'binary' or 'ternary'")
    a = glorot_scale(w)
    with torch.no_grad():
        q = quantize(w.detach(), weights, stochastic=False)
        return torch.round(q / a).to(torch.int8), a
