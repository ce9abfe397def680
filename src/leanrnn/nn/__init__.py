"""Recurrent layers: ``LeanLSTM`` and ``LeanLSTMCell`` and their building blocks."""
from .batchnorm import SeqBatchNorm
from .lstm import LeanLSTM, LeanLSTMCell
from .prune import StatePruner

__all__ = ["LeanLSTM", "LeanLSTMCell", "SeqBatchNorm", "StatePruner"]
