"""Per-time-step batch-normalization state for recurrent products.

Recurrent batch normalization (Cooijmans et al., 2017) as the ICLR 2019 reference code uses it: every
time step ``t`` keeps its own running mean and variance, because the statistics of ``W_h h_t`` drift
over the first steps of a sequence. The running statistics are stored as ``(T, F)`` buffers that
grow to the longest sequence seen in training; in eval mode a step beyond that length uses the last
stored step, as Cooijmans et al. do. Batch statistics use the biased variance, like the reference.
The normalization itself runs inside the layer's time loop (``leanrnn.nn.recurrence``); this module
holds its gains, shifts and running statistics.

With ``shared=True`` all steps share one row of running statistics (each batch's statistics pooled over
its steps): the eval-mode normalization is then the same at every step, folds into
per-gate scales that do not depend on ``t`` (no per-step tables in a model file) and streams past the
training length unchanged. Training still normalizes each step with its own batch statistics.

Running statistics start as an exact cumulative average and switch to an exponential moving average
with ``momentum`` (the reference uses 0.05) once a step has seen ``1/momentum`` batches, so that a
short run still ends with unbiased statistics.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SeqBatchNorm"]


class SeqBatchNorm(nn.Module):
    def __init__(self, num_features: int, bias: bool = False, gamma_init: float = 0.1,
                 eps: float = 1e-5, momentum: float = 0.05, shared: bool = False):
        super().__init__()
        self.num_features = num_features
        self.shared = bool(shared)
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.full((num_features,), float(gamma_init)))
        self.bias = nn.Parameter(torch.zeros(num_features)) if bias else None
        self.register_buffer("running_mean", torch.zeros(0, num_features))
        self.register_buffer("running_var", torch.ones(0, num_features))
        self.register_buffer("num_batches_tracked", torch.zeros(0, dtype=torch.long))

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, shared={self.shared}, "
                f"steps_tracked={self.running_mean.shape[0]}")

    @property
    def steps_tracked(self) -> int:
        return int(self.running_mean.shape[0])

    # -- statistics -------------------------------------------------------------------------------
    def running_stats(self, t0: int, steps: int) -> tuple[Tensor, Tensor]:
        """Running statistics for steps ``t0 .. t0+steps-1`` (clamped to the last tracked step)."""
        n = self.steps_tracked
        if n == 0:
            mean = self.running_mean.new_zeros(steps, self.num_features)
            return mean, torch.ones_like(mean)
        idx = torch.arange(t0, t0 + steps, device=self.running_mean.device).clamp_(max=n - 1)
        if self.shared:
            idx.zero_()
        return self.running_mean[idx], self.running_var[idx]

    @torch.no_grad()
    def track(self, mean: Tensor, var: Tensor, t0: int = 0) -> None:
        """Fold batch statistics of steps ``t0..`` (shape ``(T, F)``) into the running ones."""
        if self.shared:  # pooled over the steps: mean of the variances plus the variance of the means
            m = mean.mean(0, keepdim=True)
            var, mean, t0 = (var + (mean - m) ** 2).mean(0, keepdim=True), m, 0
        steps = mean.shape[0]
        self._grow(t0 + steps)
        sl = slice(t0, t0 + steps)
        count = self.num_batches_tracked[sl]
        m = torch.clamp(1.0 / (count.to(mean.dtype) + 1.0), min=self.momentum).unsqueeze(1)
        self.running_mean[sl].lerp_(mean.to(self.running_mean.dtype), m)
        self.running_var[sl].lerp_(var.to(self.running_var.dtype), m)
        count += 1

    def _grow(self, steps: int) -> None:
        n = self.steps_tracked
        if steps <= n:
            return
        extra = steps - n
        rm = self.running_mean
        self.running_mean = torch.cat([rm, rm.new_zeros(extra, self.num_features)])
        self.running_var = torch.cat([self.running_var, rm.new_ones(extra, self.num_features)])
        self.num_batches_tracked = torch.cat(
            [self.num_batches_tracked, self.num_batches_tracked.new_zeros(extra)])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "running_mean"
        if key in state_dict and self.shared and state_dict[key].shape[0] > 1:
            # per-step statistics (e.g. a run given to --init-from) pooled into the one shared row
            m, v = state_dict[key], state_dict[prefix + "running_var"]
            mm = m.mean(0, keepdim=True)
            state_dict[key], state_dict[prefix + "running_var"] = mm, (v + (m - mm) ** 2).mean(0, keepdim=True)
            nb = prefix + "num_batches_tracked"
            if nb in state_dict:
                state_dict[nb] = state_dict[nb].max().reshape(1)
        if key in state_dict:  # adopt the checkpoint's number of tracked steps
            n = state_dict[key].shape[0]
            dev = self.running_mean.device
            self.running_mean = torch.zeros(n, self.num_features, device=dev)
            self.running_var = torch.ones(n, self.num_features, device=dev)
            self.num_batches_tracked = torch.zeros(n, dtype=torch.long, device=dev)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
