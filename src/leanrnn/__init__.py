"""leanrnn: LSTMs with learned binary/ternary weights and learned state pruning, end to end."""
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so that ``import leanrnn.runtime`` stays torch-free.
    if name in ("LeanLSTM", "LeanLSTMCell"):
        from . import nn
        return getattr(nn, name)
    raise AttributeError(f"module 'leanrnn' has no attribute {name!r}")
