"""Language models: embedding → stacked LeanLSTM → linear decoder, for characters or words."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import LeanLSTM


class LanguageModel(nn.Module):
    """``embed_size=0`` feeds one-hot vectors straight to the LSTM, as the ICLR 2019 reference code
    does for its char-LMs (then ``W_ih`` itself is the quantized input lookup)."""

    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int = 1, embed_size: int | None = None,
                 dropout: float = 0.0, **lstm_kw):
        super().__init__()
        embed_size = hidden_size if embed_size is None else embed_size
        if embed_size == 0:
            self.embed = OneHot(vocab_size)
            embed_size = vocab_size
        else:
            self.embed = nn.Embedding(vocab_size, embed_size)
        self.drop = nn.Dropout(dropout)
        self.lstm = LeanLSTM(embed_size, hidden_size, num_layers=num_layers, dropout=dropout, **lstm_kw)
        self.decoder = nn.Linear(self.lstm.proj_size or hidden_size, vocab_size)

    def forward(self, tokens: Tensor, state=None):
        """``tokens``: ``(steps, batch)`` ids → logits ``(steps, batch, vocab)`` and the final state,
        which the caller carries into the next segment (truncated BPTT)."""
        out, state = self.lstm(self.drop(self.embed(tokens.long())), state)
        return self.decoder(self.drop(out)), state


class OneHot(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, ids: Tensor) -> Tensor:
        return F.one_hot(ids.long(), self.num_classes).float()
