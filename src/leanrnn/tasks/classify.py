"""Sequence classification (pixel-by-pixel images): a LeanLSTM read out from its last layer's final
state; with ``bidirectional=True`` from both directions' final states (the forward direction's after
the last step, the reverse direction's after the first), concatenated."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn import LeanLSTM


class SeqClassifier(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_classes: int, num_layers: int = 1,
                 bidirectional: bool = False, **lstm_kw):
        super().__init__()
        self.lstm = LeanLSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                             bidirectional=bidirectional, **lstm_kw)
        D = self.lstm.num_directions
        self.head = nn.Linear(D * (self.lstm.proj_size or hidden_size), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(batch, steps, input_size)`` → logits ``(batch, num_classes)``."""
        _, (h, _) = self.lstm(x)
        D = self.lstm.num_directions
        return self.head(torch.cat(list(h[-D:]), 1))
