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
    from ..export.exporter import export_run
    with tempfile.TemporaryDirectory() as tmp:
        return Model.load(export_run(src, Path(tmp) / "model.lrnn"))


def trace_inputs(model, steps: int, log: Callable[[str], None] = print) -> np.ndarray:
    """The first ``steps`` test tokens (or the first test sequence) of the model's own data set, or
    random inputs, with a note, when that data set is not here."""
    from ..data import load_for_task
    cfg = model.header.get("config", {})
    try:
        data = load_for_task(cfg["task"], cfg["data"], cfg.get("data_dir"), cfg.get("max_chars"),
                             cfg.get("vocab_size", 10000), cfg.get("permute", False), cfg.get("seed", 0))
        if cfg["task"] == "classify":
            return data["test"][0][0].numpy()
        return data.test[:steps].numpy()
    except Exception as e:  # any missing or foreign data falls back to random inputs
        log(f"note: tracing random inputs ({type(e).__name__}: {e})")
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
