"""Sequence classification (pixel-by-pixel images): a LeanLSTM read out from its last hidden state."""
from __future__ import annotations

from torch import Tensor, nn

from ..nn import LeanLSTM


class SeqClassifier(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_classes: int, num_layers: int = 1, **lstm_kw):
        super().__init__()
        self.lstm = LeanLSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True, **lstm_kw)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(batch, steps, input_size)`` → logits ``(batch, num_classes)``."""
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])
