"""Images read pixel by pixel as sequences: MNIST-format IDX files and scikit-learn's digits."""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .digits import load_digits_sequences
from .sources import IMAGE_CLASSES, IMAGE_PIXELS, PERMUTE_SEED, DataError, get_source

# IDX type code -> element type; IDX stores every multi-byte type big-endian (MSB first)
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_FIX = "replace it with an intact copy of the MNIST-format file"


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed), validating its header against its size; the
    array comes back in native byte order, as torch needs it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path} is not an intact gzip file ({e}); {_IDX_FIX}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}; check the path and its permissions") from None
    if data[:2] == b"\x1f\x8b":
        raise DataError(f"{path} is gzip-compressed; name it {path.name}.gz or gunzip it")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number: an IDX file starts with two zero bytes, "
                        f"a type code in {', '.join(f'0x{c:02X}' for c in _IDX_TYPES)} and its rank); {_IDX_FIX}")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} has a cut-off header: {ndim} dimensions need {4 + 4 * ndim} header bytes, "
                        f"the file has {len(data)}; {_IDX_FIX}")
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    need = math.prod(dims) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise DataError(f"{path} is truncated or padded: header says {need} bytes of data, file has {len(body)}; "
                        f"{_IDX_FIX}")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def _find(d: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (d / name).exists():
            return d / name
    raise DataError(f"{d / stem}[.gz] is missing; an MNIST-format directory needs train-images-idx3-ubyte, "
                    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz)")


def _read_pair(d: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images and labels, refused unless they are what a classifier here reads: unsigned-byte
    pixels (scaled by 255, as an exported classifier records) and labels of ``IMAGE_CLASSES`` classes."""
    fx, fy = _find(d, f"{prefix}-images-idx3-ubyte"), _find(d, f"{prefix}-labels-idx1-ubyte")
    x, y = read_idx(fx), read_idx(fy)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{d}: {prefix} images {x.shape} and labels {y.shape} do not match; give images of shape "
                        "(N, rows, cols) and N labels")
    if x.dtype != np.uint8:
        raise DataError(f"{fx} holds {x.dtype} pixels; MNIST-format images are unsigned bytes (IDX type 0x08), "
                        "convert them to bytes 0-255")
    if not len(x) or not x[0].size:
        raise DataError(f"{fx} holds no images (shape {x.shape}); give at least one image of at least one pixel")
    if y.dtype.kind not in "iu":
        raise DataError(f"{fy} holds {y.dtype} labels; labels are integers (IDX type 0x08)")
    if y.min() < 0 or y.max() >= IMAGE_CLASSES:
        raise DataError(f"{fy} holds label {y.min() if y.min() < 0 else y.max()}, outside the "
                        f"{IMAGE_CLASSES} classes 0-{IMAGE_CLASSES - 1}; give labels 0-{IMAGE_CLASSES - 1}")
    return x, y


def load_idx_dir(d: Path, valid_fraction: float = 1 / 12, permute: bool = False, seed: int = 0):
    """Return ``{split: (x, y)}`` with ``x`` of shape ``(N, rows*cols, 1)`` in ``[0, 1]``; the last
    ``valid_fraction`` of a fixed shuffle of the training images is the validation split."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = _read_pair(d, prefix)
        out[split] = (torch.tensor(x.reshape(len(x), -1, 1), dtype=torch.float32) / IMAGE_PIXELS["mnist"][0],
                      torch.tensor(y.astype(np.int64)))
    if permute:
        perm = torch.randperm(out["train"][0].shape[1], generator=torch.Generator().manual_seed(PERMUTE_SEED))
        out = {s: (x[:, perm], y) for s, (x, y) in out.items()}
    x, y = out["train"]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_valid = round(len(x) * valid_fraction)
    if not 0 < n_valid < len(x):
        raise DataError(f"{d}: {len(x)} training images are too few to set aside a validation split "
                        f"(1 in {round(1 / valid_fraction)}); give more training images")
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
