"""Truncated-BPTT training and whole-split evaluation of language models."""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def batchify(ids: Tensor, batch: int) -> Tensor:
    """Cut a 1-D id stream into ``batch`` contiguous streams: shape ``(length, batch)``."""
    n = ids.numel() // batch
    if n < 2:
        raise ValueError(f"{ids.numel()} tokens are too few for batch={batch}")
    return ids[: n * batch].view(batch, n).t().contiguous()


def _detach(state):
    return None if state is None else tuple(s.detach() for s in state)


def train_lm(model, streams: Tensor, steps: int, seq_len: int = 100, lr: float = 2e-3, clip: float = 1.0,
             on_step: Optional[Callable[[int, float], None]] = None) -> float:
    """Adam over ``steps`` segments of ``seq_len`` (wrapping around the streams), carrying the state
    across segments. Returns the mean loss (nats/token) of the last 10% of steps."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    state, pos, losses = None, 0, []
    for step in range(steps):
        if pos + seq_len + 1 > streams.shape[0]:
            state, pos = None, 0
        x, y = streams[pos: pos + seq_len], streams[pos + 1: pos + seq_len + 1]
        pos += seq_len
        logits, state = model(x, _detach(state))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).long())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
    tail = losses[-max(1, steps // 10):]
    return sum(tail) / len(tail)


@torch.no_grad()
def evaluate_lm(model, ids: Tensor, batch: int = 16, seq_len: int = 100) -> dict:
    """Eval-mode cross entropy over the whole stream: bits per token, perplexity and accuracy."""
    model.eval()
    streams = batchify(ids, batch)
    state, nll, correct, count = None, 0.0, 0, 0
    for pos in range(0, streams.shape[0] - 1, seq_len):
        n = min(seq_len, streams.shape[0] - 1 - pos)
        x, y = streams[pos: pos + n], streams[pos + 1: pos + n + 1].long()
        logits, state = model(x, state)
        nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
        count += y.numel()
    return {"bits_per_token": nll / count / math.log(2), "perplexity": math.exp(min(nll / count, 700.0)),
            "accuracy": correct / count, "tokens": count}
