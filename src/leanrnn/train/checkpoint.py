"""Crash-safe checkpoints: written to a temp file and renamed, read without executing code."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


class CheckpointError(Exception):
    pass


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``: a reader
    (or a crash at any moment) sees the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train first with: leanrnn train --out {path.parent}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} is corrupt or not a leanrnn checkpoint ({type(e).__name__}); "
                              "delete it to start over, or restore a copy") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise CheckpointError(f"checkpoint {path} is not a leanrnn checkpoint (no model/config)")
    vocab = ck.get("vocab")
    bad = ("config" if not isinstance(ck["config"], dict) else
           "model" if not (isinstance(ck["model"], dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                                  for k, v in ck["model"].items())) else
           "vocab" if not (vocab is None or (isinstance(vocab, list) and all(isinstance(w, str) for w in vocab)))
           else None)
    if bad:
        raise CheckpointError(f"checkpoint {path} is corrupt: its {bad} is not {_SHAPES[bad]}; restore a copy "
                              "of the run, or retrain it")
    return ck


_SHAPES = {"config": "a mapping of settings", "model": "a mapping of names to tensors", "vocab": "a list of strings"}
