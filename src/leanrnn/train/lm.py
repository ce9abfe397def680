"""Language-model streams and whole-split evaluation (training is ``leanrnn.train.Trainer``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def batchify(ids: Tensor, batch: int) -> Tensor:
    """Cut a 1-D id stream into ``batch`` contiguous streams: shape ``(length, batch)``."""
    n = ids.numel() // batch
    if n < 2:
        raise ValueError(f"{ids.numel()} tokens are too few for batch={batch}")
    return ids[: n * batch].view(batch, n).t().contiguous()


def device_of(model) -> torch.device:
    """Where a model's parameters live: inputs are moved there before a forward pass."""
    return next(model.parameters()).device


@torch.no_grad()
def evaluate_lm(model, ids: Tensor, batch: int = 16, seq_len: int = 100, carry: bool = True,
                per_token: bool = False) -> dict:
    """Eval-mode cross entropy over the whole stream: bits per token, perplexity, accuracy, and the bits
    per token of each of the ``batch`` streams (``stream_bits``, in stream order: a split of whole files
    can hold long repetitive stretches, and these show where its bits come from).

    ``carry=False`` starts every segment of ``seq_len`` from a zero state: the difference to the carried
    run is what the model gains from context longer than one segment. ``per_token`` adds ``token_bits``, a
    float64 tensor of the bits of each token of ``ids`` in its order, NaN where none is scored (each
    stream's first token, the tail that does not fill a stream), so a split's bits can be summed file by
    file."""
    model.eval()
    streams = batchify(ids, batch).to(device_of(model))
    state, correct, count = None, 0, 0
    per = torch.zeros(streams.shape[1], dtype=torch.float64)
    tokens = torch.full(streams.shape, math.nan, dtype=torch.float64) if per_token else None
    for pos in range(0, streams.shape[0] - 1, seq_len):
        n = min(seq_len, streams.shape[0] - 1 - pos)
        x, y = streams[pos: pos + n], streams[pos + 1: pos + n + 1].long()
        logits, state = model(x, state if carry else None)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        per += nll.view(n, -1).sum(0).double().cpu()
        if tokens is not None:
            tokens[pos + 1: pos + n + 1] = nll.view(n, -1).double().cpu()
        correct += (logits.argmax(-1) == y).sum().item()
        count += y.numel()
    nll = per.sum().item()
    out = {} if tokens is None else {"token_bits": torch.cat([
        (tokens.t().reshape(-1) / math.log(2)), torch.full((ids.numel() - tokens.numel(),), math.nan,
                                                            dtype=torch.float64)])}
    return {**out, "bits_per_token": nll / count / math.log(2), "perplexity": math.exp(min(nll / count, 700.0)),
            "accuracy": correct / count, "tokens": count,
            "stream_bits": (per / (streams.shape[0] - 1) / math.log(2)).tolist()}
