"""Training and evaluation loops, checkpoints, metrics and plots."""
from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .config import ConfigError, TrainConfig, load_recipe
from .lm import batchify, evaluate_lm
from .trainer import Trainer, TrainingError, evaluate_split, load_data, load_run

__all__ = ["batchify", "evaluate_lm", "Trainer", "TrainConfig", "TrainingError", "ConfigError",
           "CheckpointError", "load_recipe", "load_checkpoint", "save_atomic", "load_run", "load_data",
           "evaluate_split"]
