"""Training and evaluation loops, checkpoints, metrics and plots.

``TrainConfig``, ``ConfigError`` and ``epochs_done`` (``config``) need no torch, so the command line can build its
flags from them on an install without the ``[train]`` extra; the rest loads torch on first use.
"""
from .config import ConfigError, TrainConfig, epochs_done, load_recipe

_LAZY = {"CheckpointError": "checkpoint", "load_checkpoint": "checkpoint", "save_atomic": "checkpoint",
         "batchify": "lm", "evaluate_lm": "lm", "Trainer": "trainer", "TrainingError": "trainer",
         "check_vocab": "trainer", "evaluate_split": "trainer", "load_data": "trainer", "load_run": "trainer",
         "model_bits": "trainer",
         "plot_points": "plots", "plot_curves": "plots"}

__all__ = ["ConfigError", "TrainConfig", "epochs_done", "load_recipe", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
