"""Models for the papers' tasks, built on ``leanrnn.nn``."""
from .classify import SeqClassifier
from .lm import LanguageModel

__all__ = ["SeqClassifier", "LanguageModel"]
