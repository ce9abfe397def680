"""What the accelerator model is driven with: a trained model and the inputs to trace through it."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def load_model(path: str | Path):
    """A runtime ``Model`` from a ``.lrnn`` file, or from a run directory (exported on the fly)."""
    from ..runtime import Model
    src = Path(path)
    if not src.is_dir():
        return Model.load(src)
    from ..export import read_lrnn
    from ..export.exporter import export_run
    with tempfile.TemporaryDirectory() as tmp:  # read back without the load's path: it names a temporary file
        return Model(*read_lrnn(export_run(src, Path(tmp) / "model.lrnn")), _validated=True)


#: most entries under a data folder named by a model's header that ``trace_inputs`` will walk
MAX_TREE = 100_000


def _small_tree(p: Path) -> bool:
    """Whether the folder ``p`` holds at most ``MAX_TREE`` entries, counted without following links and
    stopping past it: a header naming ``/`` must not walk the whole filesystem."""
    import os
    n = 0
    for _, dirs, files in os.walk(p):
        n += len(dirs) + len(files)
        if n > MAX_TREE:
            return False
    return True


def _unsafe_source(cfg: dict) -> str | None:
    """Why the data set a model's header names is not read for tracing (None: it may be): the header is
    untrusted input, so only a known data set name, a regular file, or a folder of at most
    ``MAX_TREE`` entries is opened; devices, pipes and huge folders are not."""
    from ..data import SOURCES
    task, data, data_dir = cfg.get("task"), cfg.get("data"), cfg.get("data_dir")
    if not isinstance(task, str) or not isinstance(data, str) or not (data_dir is None or isinstance(data_dir, str)):
        return "its header names no data set"
    for path in ([] if data in SOURCES else [data]) + ([] if data_dir is None else [data_dir]):
        p = Path(path)
        if not p.exists():
            return f"{path} does not exist"
        if not (p.is_file() or (p.is_dir() and _small_tree(p))):
            return f"{path} is not a text file or a data folder of at most {MAX_TREE:,} entries"
    return None


def _fits(model, x: np.ndarray, vocab) -> str | None:
    """Why traced inputs ``x`` do not fit ``model`` (None: they do): another vocabulary means the data
    changed since training, another width another data set."""
    if model.is_lm:
        if vocab is not None and model.vocab is not None and list(vocab) != list(model.vocab):
            return (f"the data's vocabulary ({len(vocab)} tokens) is not the model's ({len(model.vocab)}): "
                    "the data changed since training")
        if x.size and (x.min() < 0 or x.max() >= model.input["vocab"]):
            return f"the data's token ids reach {int(x.max())}, the model has {model.input['vocab']} tokens"
    elif x.ndim != 2 or x.shape[1] != model.input["size"]:
        return f"the data's inputs have width {x.shape[-1] if x.ndim else 0}, the model's {model.input['size']}"
    return None


def trace_inputs(model, steps: int, log: Callable[[str], None] = print) -> np.ndarray:
    """The first ``steps`` test tokens (or the first test sequence) of the model's own data set, or
    random inputs, with a note, when that data set is not here, not safe to read, or does not fit
    the model."""
    cfg = model.header.get("config", {})
    why = _unsafe_source(cfg)
    if why is None:
        from ..data import load_for_task
        try:
            data = load_for_task(cfg["task"], cfg["data"], cfg.get("data_dir"), cfg.get("max_chars"),
                                 cfg.get("vocab_size", 10000), cfg.get("permute", False), cfg.get("seed", 0))
            if cfg["task"] == "classify":
                x, vocab = data["test"][0][0].numpy(), None
            else:
                x, vocab = data.test[:steps].numpy(), data.vocab
            why = _fits(model, x, vocab)
            if why is None:
                return x
        except Exception as e:  # any missing or foreign data falls back to random inputs
            why = f"{type(e).__name__}: {e}"
    log(f"note: tracing random inputs ({' '.join(why.split())})")
    rng = np.random.default_rng(0)
    if model.input["kind"] == "dense":
        return rng.random((steps, model.input["size"]), dtype=np.float32)
    return rng.integers(0, model.input["vocab"], steps)


def analyse_model(model, steps: int, accel=None, log: Callable[[str], None] = print) -> dict:
    """``leanrnn hw``'s report: the model's real state masks over traced inputs, on ``accel`` (default:
    the accelerator that matches the model) and its dense / 12-bit variants."""
    from .config import HardwareConfigError
    from .report import analyse, record_masks
    layers = model.header["layers"]
    if any(L.get("reverse") or L.get("proj_size") for L in layers):
        raise HardwareConfigError("the accelerator model covers one-directional LSTMs without projection; this "
                                  "model is bidirectional or projected: analyse a one-directional model instead")
    if any(L.get("prune_output") is False for L in layers[:-1]):
        raise HardwareConfigError("the accelerator model feeds each layer the zero-skipped state of the layer "
                                  "below; this model passes unpruned states on (--no-prune-output): analyse a "
                                  "one-layer model or one trained with --prune-output")
    masks, input_mask = record_masks(model, trace_inputs(model, steps, log))
    return analyse(model.header, masks, input_mask, accel)


def write_report(res: dict, out: str | Path) -> list[Path]:
    """The report's plots and ``hw_report.json`` in ``out`` (created if missing)."""
    import json

    from .report import plot_report
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = plot_report(res, out)
    (out / "hw_report.json").write_text(json.dumps(res, indent=1, default=float))
    return paths + [out / "hw_report.json"]
