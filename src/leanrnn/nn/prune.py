"""Learned state pruning (Ardakani, Ji, Gross, DATE 2019).

Hidden-state entries whose magnitude is below a threshold ``theta`` are set to zero before they are
fed back into the recurrence and passed on as the output, so at inference the whole column of
``W_hh`` for such an entry can be skipped. The network *learns* to keep its information in the few
entries that survive, because it is trained with pruning in the loop.

Choices (see ``LeanLSTM``):

* ``theta`` is a buffer, not a parameter. In training it is set after each forward pass to an
  exponential moving average of the quantile of the pre-pruning ``|h|`` at the target level, so the
  run reaches the requested fraction of zeros without a hand-tuned threshold. The level aims
  ``margin * (1 - s)`` above the target ``s``, and an integral term on the measured sparsity removes
  the lag of the average, so the run does not fall short of the target.
  ``warmup_steps`` ramps the target from 0 so early training is not starved of state.
* Gradient: ``grad="mask"`` (default) is the exact gradient of the pruned forward pass: a zeroed
  entry passes no gradient into its gates at that step. ``grad="ste"`` passes it straight through
  as if the entry had been kept. On the char-LM demo (300 steps, 256 units, 90% sparsity) "mask"
  reached 2.95 bits/char and "ste" 3.35, so "mask" is the default.
* ``ramp`` (set by the training loop, default 1) scales the target: a gradual schedule (Zhu & Gupta,
  2017) trains dense first and raises the zeros slowly, so the network can move its information into
  the entries that survive.
* In eval mode ``theta`` is fixed, so inference is deterministic. Training sets ``theta`` from
  training-mode states (sampled weights, batch statistics); the eval-mode model has a different
  ``|h|`` distribution, so it would ship with fewer (or more) zeros than promised.
  ``LeanLSTM.calibrate_pruning`` re-sets ``theta`` by bisection on the eval-mode model's measured zeros.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["StatePruner"]

_QUANTILE_SAMPLE = 1 << 16


class StatePruner(nn.Module):
    def __init__(self, sparsity: float, momentum: float = 0.1, warmup_steps: int = 0,
                 margin: float = 0.05, grad: str = "mask"):
        super().__init__()
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"state_sparsity={sparsity!r} must be in [0, 1)")
        if grad not in ("ste", "mask"):
            raise ValueError(f"prune_grad={grad!r} is not supported; use 'ste' or 'mask'")
        self.sparsity = float(sparsity)
        self.momentum = float(momentum)
        self.warmup_steps = int(warmup_steps)
        self.margin = float(margin)
        self.grad = grad
        # An inactive pruner keeps no state in the state_dict, so nn.LSTM checkpoints load as they are.
        persistent = self.sparsity > 0
        self.register_buffer("threshold", torch.zeros(()), persistent=persistent)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long), persistent=persistent)
        self.register_buffer("level_offset", torch.zeros(()), persistent=persistent)
        self.gain = 0.5
        self.ramp = 1.0
        self.reset_stats()

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity}, threshold={float(self.threshold):.4g}, grad={self.grad!r}"

    @property
    def active(self) -> bool:
        return self.sparsity > 0.0

    def target_level(self) -> float:
        """The sparsity aimed at now: the target, ramped over ``warmup_steps``, plus the margin."""
        ramp = 1.0 if self.warmup_steps <= 0 else min(1.0, float(self.num_updates) / self.warmup_steps)
        s = self.sparsity * ramp * self.ramp
        return s + self.margin * (1.0 - s) if s > 0 else 0.0

    @torch.no_grad()
    def update(self, h_pre: Tensor, h_out: Tensor, zeros: Tensor | None = None) -> None:
        """Move ``theta`` towards the quantile of pre-pruning magnitudes that gives the target level
        (training only). An integral term on the measured sparsity removes the steady-state error the
        moving average would otherwise leave (the quantile is taken one batch late)."""
        if not self.active:
            return
        aim = self.target_level()
        if int(self.num_updates) > 0:
            measured = float(self._zeros_in(h_out, zeros)) / h_out.numel()
            self.level_offset += self.gain * (aim - measured)
            self.level_offset.clamp_(-aim, 0.999 - aim)
        level = min(max(aim + float(self.level_offset), 0.0), 0.999)
        mag = h_pre.detach().reshape(-1)
        if mag.numel() > _QUANTILE_SAMPLE:  # a strided sample keeps this O(1) in sequence length
            mag = mag[:: mag.numel() // _QUANTILE_SAMPLE + 1]
        mag = mag.abs()
        k = max(1, min(mag.numel(), int(round(level * mag.numel()))))
        q = mag.kthvalue(k).values if level > 0 else mag.new_zeros(())
        if int(self.num_updates) == 0:
            self.threshold.copy_(q)
        else:
            self.threshold.lerp_(q.to(self.threshold.dtype), self.momentum)
        self.num_updates += 1

    # -- measured sparsity ------------------------------------------------------------------------
    def reset_stats(self) -> None:
        self._zeros = 0
        self._total = 0

    @torch.no_grad()
    def record(self, h: Tensor, zeros: Tensor | None = None) -> None:
        """Count the zeros of states that are fed back (kept as a tensor: no sync per call); ``zeros``
        is their count where the caller has it already."""
        self._zeros = self._zeros + self._zeros_in(h, zeros)
        self._total += h.numel()

    @staticmethod
    def _zeros_in(h: Tensor, zeros: Tensor | None) -> Tensor:
        return h.numel() - torch.count_nonzero(h) if zeros is None else zeros

    def measured(self) -> float:
        return float(self._zeros) / self._total if self._total else float("nan")
