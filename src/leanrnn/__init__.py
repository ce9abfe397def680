"""leanrnn: LSTMs with learned binary/ternary weights and learned state pruning, end to end."""
__version__ = "0.1.0"
