"""Training and evaluation loops."""
from .lm import batchify, evaluate_lm, train_lm

__all__ = ["batchify", "train_lm", "evaluate_lm"]
