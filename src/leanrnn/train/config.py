"""One experiment's settings: defaults, recipe files (YAML), command-line overrides, validation."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

TASKS = ("char-lm", "word-lm", "classify")


class ConfigError(ValueError):
    """A bad setting; the message names it and the allowed values."""


@dataclass
class TrainConfig:
    task: str = "char-lm"
    data: str = "pystdlib"
    data_dir: Optional[str] = None
    max_chars: Optional[int] = None      # cap on the training text (char/word LM)
    vocab_size: int = 10000              # word LM
    permute: bool = False                # classify: fixed pixel permutation
    weights: str = "fp"
    stochastic: bool = True
    batch_norm: bool = False
    state_sparsity: float = 0.0
    prune_warmup: int = 0
    hidden: int = 256
    layers: int = 1
    embed: int = 64                      # 0: one-hot characters, as the reference code
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float = 2e-3
    lr_final: Optional[float] = None     # geometric decay per epoch from lr to lr_final (the reference's rule)
    clip: float = 1.0
    epochs: int = 10
    batch: int = 64
    seq_len: int = 100
    steps_per_epoch: Optional[int] = None
    eval_batch: int = 16
    checkpoint_every: int = 200
    seed: int = 0
    threads: Optional[int] = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def validate(self) -> "TrainConfig":
        from ..quant import WEIGHT_MODES
        if self.task not in TASKS:
            raise ConfigError(f"task={self.task!r} is not supported; use one of {', '.join(TASKS)}")
        if self.weights not in WEIGHT_MODES:
            raise ConfigError(f"weights={self.weights!r} is not supported; use one of {', '.join(WEIGHT_MODES)}")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"optimizer={self.optimizer!r} is not supported; use 'adam' or 'sgd'")
        if not 0.0 <= self.state_sparsity < 1.0:
            raise ConfigError(f"state_sparsity={self.state_sparsity} must be in [0, 1)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if not isinstance(self.embed, int) or self.embed < 0:
            raise ConfigError(f"embed={self.embed!r} must be >= 0 (0: one-hot input)")
        for name in ("hidden", "layers", "epochs", "batch", "seq_len", "eval_batch", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name}={v!r} must be a positive integer")
        if not self.lr > 0 or (self.lr_final is not None and not self.lr_final > 0):
            raise ConfigError(f"lr={self.lr} and lr_final={self.lr_final} must be > 0")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**d)


def load_recipe(path: str | Path) -> dict:
    import yaml
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"recipe {p} does not exist; the shipped ones are in recipes/")
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"recipe {p} is not valid YAML: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"recipe {p} must be a mapping of setting: value")
    d.pop("paper", None)  # documentation only: the paper's setting and result
    return d
