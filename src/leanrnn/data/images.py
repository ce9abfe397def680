"""Images read pixel by pixel as sequences: MNIST-format IDX files and scikit-learn's digits."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from .digits import load_digits_sequences
from .sources import IMAGE_PIXELS, PERMUTE_SEED, DataError, get_source

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed), validating its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise DataError(f"{path} is truncated or padded: header says {need} bytes of data, file has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _find(d: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (d / name).exists():
            return d / name
    raise DataError(f"{d / stem}[.gz] is missing; an MNIST-format directory needs train-images-idx3-ubyte, "
                    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz)")


def load_idx_dir(d: Path, valid_fraction: float = 1 / 12, permute: bool = False, seed: int = 0):
    """Return ``{split: (x, y)}`` with ``x`` of shape ``(N, rows*cols, 1)`` in ``[0, 1]``; the last
    ``valid_fraction`` of a fixed shuffle of the training images is the validation split."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(_find(d, f"{prefix}-images-idx3-ubyte"))
        y = read_idx(_find(d, f"{prefix}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{d}: {prefix} images {x.shape} and labels {y.shape} do not match")
        out[split] = (torch.tensor(x.reshape(len(x), -1, 1), dtype=torch.float32) / IMAGE_PIXELS["mnist"][0],
                      torch.tensor(y.astype(np.int64)))
    if permute:
        perm = torch.randperm(out["train"][0].shape[1], generator=torch.Generator().manual_seed(PERMUTE_SEED))
        out = {s: (x[:, perm], y) for s, (x, y) in out.items()}
    x, y = out["train"]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_valid = round(len(x) * valid_fraction)
    out["valid"] = (x[order[:n_valid]], y[order[:n_valid]])
    out["train"] = (x[order[n_valid:]], y[order[n_valid:]])
    return out


def load_images(source: str, data_dir: str | None = None, permute: bool = False, seed: int = 0):
    """``{split: (x, y)}`` for ``digits``, ``fashion-mnist``, ``mnist`` or an IDX directory path."""
    if source == "digits":
        (xt, yt), (xs, ys) = load_digits_sequences(seed=seed, permute=permute)
        n_valid = len(xs) // 2
        return {"train": (xt, yt), "valid": (xs[:n_valid], ys[:n_valid]), "test": (xs[n_valid:], ys[n_valid:])}
    if source in ("fashion-mnist", "mnist"):
        return load_idx_dir(get_source(source).require(data_dir), permute=permute, seed=seed)
    p = Path(source)
    if p.is_dir():
        return load_idx_dir(p, permute=permute, seed=seed)
    get_source(source)
    raise DataError(f"{source!r} is not an image data set; use digits, fashion-mnist, mnist or an IDX directory")
