"""One experiment's settings: defaults, recipe files (YAML), command-line overrides, validation.

Every field carries its help text (``metadata["help"]``) and, where it has a fixed set of values,
its choices (``metadata["choices"]``): the CLI builds one flag per field from them, so recipes, flags
and help never drift apart. ``validate`` checks types exactly (a recipe's ``"no"`` is not a bool,
``"0.9"`` is not a number) and ranges, and names the fix.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..facts import TASKS, WEIGHT_MODES

BN_STATS = ("step", "shared")
PRUNE_SCHEDULES = ("constant", "linear", "cubic")
LR_SCHEDULES = ("epoch", "step", "cosine")
PRUNE_GRADS = ("mask", "ste")
# Keys that older checkpoints carry and that no longer mean anything; dropped when a config is read.
_OBSOLETE = {"extra": None, "note": None, "prune_warmup": 0}


#: most LSTM weights a model may have (4 GiB at fp32; training holds four times that)
MAX_LSTM_WEIGHTS = 2**30
MAX_SEED = 2**32 - 1
MAX_THREADS = 1024


class ConfigError(ValueError):
    """A bad setting; the message names it and the allowed values."""


class UnknownSetting(ConfigError):
    """A setting, or a value of a fixed set, that this version does not have: in a checkpoint, the sign
    that another version wrote it (where a wrong type or range means a corrupt one)."""


def _f(default, help: str, choices: tuple = ()):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    task: str = _f("char-lm", "what to train", TASKS)
    data: str = _f("pystdlib", "data set name (see 'leanrnn data list') or a path to text")
    data_dir: str | None = _f(None, "directory or archive of a data set that is not at its default place")
    max_chars: int | None = _f(None, "cap on the training text in characters (char/word LM)")
    max_examples: int | None = _f(None, "classify: train on the first N training sequences only (a stated subset; "
                                  "the validation and test splits stay whole)")
    vocab_size: int = _f(10000, "word LM: keep the most frequent words, the rest become <unk>")
    permute: bool = _f(False, "classify: read pixels in a fixed random order (permuted sequential images)")
    weights: str = _f("fp", "LSTM weight mode", WEIGHT_MODES)
    stochastic: bool = _f(True, "sample binary/ternary weights in training (deterministic rounding otherwise)")
    batch_norm: bool = _f(False, "batch-normalize W_ih x, W_hh h and c (recurrent BN, as the ICLR paper); "
                          "'leanrnn train' turns it on for binary/ternary weights trained from scratch when "
                          "neither norm is chosen")
    bn_stats: str = _f("step", "BN running statistics per time step (the paper's) or shared by all steps "
                       "(time-independent: no per-step tables in the model file)", BN_STATS)
    weight_norm: bool = _f(False, "instead of batch norm, scale each row of the quantized matrices to a learned "
                           "norm (Hou et al. 2019): no statistics, one scale per row at inference. With neither "
                           "norm chosen, 'leanrnn train' gives binary/ternary weights per-step batch norm, or "
                           "the --init-from run's norm (weight norm where it had none)")
    state_sparsity: float = _f(0.0, "target fraction of zero hidden states in [0, 1)")
    prune_schedule: str = _f("constant", "how the zero-state target rises from 0 between --prune-start and "
                             "--prune-end (fractions of training): cubic is Zhu & Gupta's gradual pruning",
                             PRUNE_SCHEDULES)
    prune_start: float = _f(0.0, "fraction of the training steps trained dense before pruning starts")
    prune_end: float = _f(0.0, "fraction of the training steps at which the full target is reached")
    prune_grad: str = _f("mask", "gradient through a pruned state: mask (exact: none) or ste (straight "
                         "through, as if it had been kept)", PRUNE_GRADS)
    prune_output: bool = _f(True, "the output layer and the next layer see the pruned state (the DATE paper; "
                            "they skip its zero columns too); --no-prune-output prunes only the state fed back "
                            "into W_hh, and they read every unit")
    prune_calibrate: bool = _f(True, "before each evaluation, set the pruning threshold in eval mode so the "
                               "shipped model has the target's zeros at inference")
    hidden: int = _f(256, "LSTM units per layer")
    layers: int = _f(1, "stacked LSTM layers")
    bidirectional: bool = _f(False, "classify: a reverse direction too, both final states read out (the ICLR "
                             "paper's attentive reader is a bidirectional LSTM)")
    embed: int = _f(64, "input embedding size; 0 feeds one-hot characters/words (as the reference code)")
    dropout: float = _f(0.0, "dropout between layers and before the decoder, in [0, 1)")
    optimizer: str = _f("adam", "optimizer", ("adam", "sgd"))
    lr: float = _f(2e-3, "learning rate")
    lr_final: float | None = _f(None, "decay the learning rate to this value by the end of training "
                                "(--lr-schedule says how)")
    lr_schedule: str = _f("epoch", "how the rate falls from --lr to --lr-final: epoch (geometric, one step per "
                          "epoch), step (geometric, every step: it also decays within a one-epoch budget) or "
                          "cosine (every step, half a cosine)", LR_SCHEDULES)
    clip: float = _f(1.0, "clip the gradient norm to this value (0: no clipping)")
    epochs: int = _f(10, "passes over the training data")
    patience: int = _f(0, "stop once this many epochs in a row end without a better validation metric than the "
                          "best (the run then counts as finished; 0: train every epoch)")
    batch: int = _f(64, "sequences per step (LM: parallel streams)")
    seq_len: int = _f(100, "LM: characters/words per truncated-BPTT segment")
    steps_per_epoch: int | None = _f(None, "cap on the steps of one epoch")
    eval_batch: int = _f(16, "LM: parallel streams when evaluating a split")
    checkpoint_every: int = _f(200, "steps between checkpoints (one is also written at each epoch end)")
    log_every: int = _f(50, "steps between rows of steps.jsonl (training loss curve)")
    seed: int = _f(0, "random seed (model, sampling, batch order)")
    threads: int | None = _f(None, "torch CPU threads (default: torch's choice)")
    device: str = _f("cpu", "where to train: cpu, or cuda / cuda:N (a GPU); checkpoints and model files are the "
                     "same either way, and a run resumes on either (bit-exactly on the device it started on)")
    init_from: str | None = _f(None, "start from the weights of a trained run directory (fine-tune into "
                                  "quantization and/or pruning); parts it lacks keep their initial values")
    init_rescale: bool = _f(False, "with --init-from into ternary weights under batch or weight norm: scale each "
                            "loaded LSTM matrix so that 0.7 mean|w| falls on the ternary threshold (the norm "
                            "makes the scale free); otherwise most trained fp weights ternarize to +-a, a sign "
                            "pattern with almost no zeros")
    clip_latent: bool = _f(False, "binary/ternary: clip the latent weights to the quantizer's range [-a, a] after "
                           "each step (BinaryConnect's rule; the ICLR reference does not), so that no weight "
                           "drifts to where it always samples the same value")
    teacher: str | None = _f(None, "distil from this trained run's outputs (a KL term on its softened "
                                "distribution)")
    distill_weight: float = _f(0.5, "weight of the distillation term in [0, 1] (the rest is cross entropy)")
    distill_temp: float = _f(1.0, "softmax temperature of the distillation term")

    def validate(self) -> TrainConfig:
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            t = hints[f.name]
            args = typing.get_args(t)
            if v is None and type(None) in args:
                continue
            base = next((a for a in args if a is not type(None)), t)
            if not _is_type(v, base):
                raise ConfigError(f"{f.name}={v!r} must be {_TYPE_NAMES[base]}, not {type(v).__name__}"
                                  + (" (write true or false)" if base is bool else ""))
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{f.name}={v!r} must be a finite number")
            choices = f.metadata.get("choices")
            if choices and v not in choices:
                raise UnknownSetting(f"{f.name}={v!r} is not supported; use one of {', '.join(choices)}")
        for name in ("hidden", "layers", "epochs", "batch", "seq_len", "eval_batch", "checkpoint_every",
                     "log_every", "vocab_size", "max_chars", "max_examples", "steps_per_epoch", "threads"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name}={v!r} must be a positive integer")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed={self.seed} must be in [0, {MAX_SEED}]")
        if self.threads is not None and self.threads > MAX_THREADS:
            raise ConfigError(f"threads={self.threads} is more than {MAX_THREADS}; give at most the machine's cores")
        n = 4 * self.hidden * (max(self.embed, 1) + self.hidden) * self.layers * (2 if self.bidirectional else 1)
        if n > MAX_LSTM_WEIGHTS:
            raise ConfigError(f"hidden={self.hidden}, embed={self.embed}, layers={self.layers} make {n:.3g} LSTM "
                              f"weights, more than the {MAX_LSTM_WEIGHTS:.3g} this trainer takes; lower --hidden, "
                              "--embed or --layers")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device={self.device!r} is not supported; use cpu, cuda or cuda:N")
        if self.patience < 0:
            raise ConfigError(f"patience={self.patience!r} must be >= 0 (0: train every epoch)")
        if self.embed < 0:
            raise ConfigError(f"embed={self.embed!r} must be >= 0 (0: one-hot input)")
        if self.bidirectional and self.task != "classify":
            raise ConfigError("bidirectional is for the classify task (a language model cannot read ahead)")
        if self.batch_norm and self.weight_norm:
            raise ConfigError("batch_norm and weight_norm are alternatives; drop one of --batch-norm, --weight-norm")
        if not 0.0 <= self.state_sparsity < 1.0:
            raise ConfigError(f"state_sparsity={self.state_sparsity} must be in [0, 1)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if not self.lr > 0 or (self.lr_final is not None and not self.lr_final > 0):
            raise ConfigError(f"lr={self.lr} and lr_final={self.lr_final} must be > 0")
        if self.lr_schedule != "epoch" and self.lr_final is None:
            raise ConfigError(f"lr_schedule={self.lr_schedule!r} needs lr_final (the rate it ends at); add "
                              "--lr-final")
        if self.clip < 0:
            raise ConfigError(f"clip={self.clip} must be >= 0 (0: no clipping)")
        if not 0.0 <= self.prune_start <= 1.0 or not 0.0 <= self.prune_end <= 1.0:
            raise ConfigError(f"prune_start={self.prune_start} and prune_end={self.prune_end} are fractions of "
                              "training in [0, 1]")
        if self.prune_schedule != "constant" and not self.prune_end > self.prune_start:
            raise ConfigError(f"prune_schedule={self.prune_schedule!r} needs prune_end > prune_start "
                              f"(got {self.prune_end} and {self.prune_start})")
        if not 0.0 <= self.distill_weight <= 1.0 or not self.distill_temp > 0:
            raise ConfigError(f"distill_weight={self.distill_weight} must be in [0, 1] and "
                              f"distill_temp={self.distill_temp} > 0")
        if self.clip_latent and self.weights == "fp":
            raise ConfigError("clip_latent clips the latent weights of binary/ternary matrices; it needs "
                              "--weights binary or --weights ternary")
        if self.init_rescale and not (self.init_from and self.weights == "ternary"
                                      and (self.batch_norm or self.weight_norm)):
            raise ConfigError("init_rescale fits loaded fp matrices to ternary weights under a normalization; it "
                              "needs --init-from, --weights ternary and --batch-norm or --weight-norm")
        return self

    def lr_at(self, epoch: int, progress: float) -> float:
        """The learning rate in ``epoch`` (0-based) at ``progress`` (fraction of all training steps done).

        A pure function of the position, so a resumed run continues on the same curve."""
        if self.lr_final is None:
            return self.lr
        ratio = self.lr_final / self.lr
        if self.lr_schedule == "epoch":
            return self.lr * ratio ** (epoch / self.epochs)
        if self.lr_schedule == "step":
            return self.lr * ratio ** progress
        return self.lr_final + 0.5 * (self.lr - self.lr_final) * (1.0 + math.cos(math.pi * progress))

    def prune_ramp(self, progress: float) -> float:
        """Fraction of the zero-state target in force at ``progress`` (fraction of training done)."""
        if self.prune_schedule == "constant":
            return 1.0
        p = min(max((progress - self.prune_start) / (self.prune_end - self.prune_start), 0.0), 1.0)
        return p if self.prune_schedule == "linear" else 1.0 - (1.0 - p) ** 3

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Settings from a recipe, flags or a checkpoint; unknown keys and wrong types are errors."""
        d = dict(d)
        for k, neutral in _OBSOLETE.items():
            if k in d and (d[k] == neutral or k in ("extra", "note")):
                d.pop(k)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(d) - names)  # a YAML key can be a number or null
        if unknown:
            raise UnknownSetting(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**d).validate()


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _is_type(v, t) -> bool:
    if t is bool:
        return isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if t is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, t)


def load_recipe(path: str | Path) -> dict:
    import yaml
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"recipe {p} does not exist; the shipped ones are in recipes/")
    if p.is_dir():
        raise ConfigError(f"recipe {p} is a directory; name one YAML file in it, e.g. recipes/char-pystdlib.yaml")
    try:
        d = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"recipe {p} is not valid YAML ({type(e).__name__}); fix the file or name another") from None
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"recipe {p} must be a mapping of setting: value")
    d.pop("paper", None)  # documentation only: the paper's setting and result
    return d


def epochs_done(run_dir: str | Path) -> tuple[int, int] | None:
    """``(epochs logged in metrics.jsonl, epochs in config.json)`` of a run directory, or None where it
    holds no readable config: whether a run has finished, for whoever starts from it. A run stopped by
    ``patience`` has finished: its last row says so, and both numbers are its logged epochs."""
    run = Path(run_dir)
    try:
        total = int(json.loads((run / "config.json").read_text())["epochs"])
        rows = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
        rows = [json.loads(x) for x in rows if x.strip()]
        done = len({r["epoch"] for r in rows})
        return (done, done) if rows and rows[-1].get("stopped_early") else (done, total)
    except (OSError, ValueError, KeyError, TypeError):
        return None
