"""The ``.lrnn`` model file: safetensors tensors plus a JSON header, read without executing code.

Torch-free (numpy + safetensors) so that ``leanrnn.runtime`` can read it on a device with no torch.

Layout, version 1. Every weight matrix is stored transposed, ``(in_features, 4H)``, so the weights
that multiply one input or state entry (a *column* of ``W``) are contiguous and a zero state entry
skips one contiguous run. Codes are packed along the ``4H`` axis:

* ternary, 2 bits: ``00`` = 0, ``01`` = +1, ``10`` = -1 (``11`` is invalid); four per byte, the
  first in the lowest bits;
* binary, 1 bit: ``1`` = +1, ``0`` = -1; eight per byte, the first in the lowest bit.

Batch norm is folded exactly into per-gate scales and shifts for each stored time step ``t``
(steps past the last reuse it): ``z_t = S_ih[t] * (C_ih . x) + S_hh[t] * (C_hh . h) + B[t]`` and
``c_hat = S_c[t] * c + B_c[t]``, where ``C`` are the codes and ``S`` carries the weight scale ``a``.

The header holds the format version, task, vocabulary, every layer's shapes and modes, the pruning
thresholds, and a SHA-256 over the header (without the checksum) and every tensor's bytes.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

FORMAT, VERSION = "leanrnn", 1
BITS = {"fp": 32, "binary": 1, "ternary": 2}


class ModelFormatError(ValueError):
    """The file is not a valid .lrnn model; the message says what is wrong."""


# -- packing ----------------------------------------------------------------------------------------

def pack_codes(codes: np.ndarray, mode: str) -> np.ndarray:
    """Pack int8 codes of shape ``(rows, n)`` along the last axis into uint8."""
    codes = np.asarray(codes, dtype=np.int8)
    rows, n = codes.shape
    if mode == "ternary":
        if not np.isin(codes, (-1, 0, 1)).all():
            raise ValueError("ternary codes must be -1, 0 or +1")
        v = np.where(codes == 1, 1, np.where(codes == -1, 2, 0)).astype(np.uint8)
        per = 4
    elif mode == "binary":
        if not np.isin(codes, (-1, 1)).all():
            raise ValueError("binary codes must be -1 or +1")
        v = (codes == 1).astype(np.uint8)
        per = 8
    else:
        raise ValueError(f"cannot pack mode {mode!r}")
    width = 8 // per
    pad = (-n) % per
    v = np.pad(v, ((0, 0), (0, pad))).reshape(rows, -1, per)
    shifts = (np.arange(per, dtype=np.uint8) * width).astype(np.uint8)
    return np.bitwise_or.reduce(v << shifts, axis=2).astype(np.uint8)


def unpack_codes(packed: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Inverse of ``pack_codes``: int8 codes of shape ``(rows, n)``; raises on invalid codes."""
    per, width = (4, 2) if mode == "ternary" else (8, 1)
    shifts = (np.arange(per, dtype=np.uint8) * width).astype(np.uint8)
    v = ((packed[:, :, None] >> shifts) & ((1 << width) - 1)).reshape(packed.shape[0], -1)
    if v[:, n:].any():
        raise ModelFormatError("packed weight codes have non-zero padding bits")
    v = v[:, :n]
    if mode == "ternary":
        if (v == 3).any():
            raise ModelFormatError("ternary weight codes hold the invalid value 0b11")
        return np.where(v == 1, 1, np.where(v == 2, -1, 0)).astype(np.int8)
    return np.where(v == 1, 1, -1).astype(np.int8)


def packed_width(n: int, mode: str) -> int:
    return math.ceil(n * BITS[mode] / 8)


# -- file I/O ---------------------------------------------------------------------------------------

def checksum(header: dict, tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "checksum"}
    h.update(json.dumps(body, sort_keys=True).encode())
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_lrnn(path: str | Path, header: dict, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file
    header = dict(header, format=FORMAT, version=VERSION)
    header["checksum"] = checksum(header, tensors)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp),
              metadata={"leanrnn": json.dumps(header)})
    tmp.replace(path)


def read_lrnn(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and fully validate a model file: ``(header, tensors)``; any defect is a ModelFormatError."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path} does not exist; create it with: leanrnn export RUN_DIR -o {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for truncated or garbled files
        raise ModelFormatError(f"{path} is not a readable .lrnn file ({type(e).__name__}: {e}); "
                               "export the model again") from None
    try:
        header = json.loads(meta["leanrnn"])
    except (KeyError, ValueError, TypeError):
        raise ModelFormatError(f"{path} has no valid leanrnn header; is it a leanrnn export?") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFormatError(f"{path} is not a leanrnn model (format field missing)")
    if header.get("version") != VERSION:
        raise ModelFormatError(f"{path} has format version {header.get('version')!r}; this leanrnn reads "
                               f"version {VERSION}: export the model again with this version")
    if header.get("checksum") != checksum(header, tensors):
        raise ModelFormatError(f"{path} is corrupted: its checksum does not match its contents")
    validate(header, tensors)
    return header, tensors


def _expect(tensors, name, shape, dtype):
    if name not in tensors:
        raise ModelFormatError(f"tensor {name!r} is missing")
    a = tensors[name]
    if tuple(a.shape) != tuple(shape) or a.dtype != np.dtype(dtype):
        raise ModelFormatError(f"tensor {name!r} is {a.dtype}{tuple(a.shape)}, expected {np.dtype(dtype)}{tuple(shape)}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ModelFormatError(f"tensor {name!r} holds non-finite values")


def validate(header: dict, tensors: dict[str, np.ndarray]) -> None:
    """Check every shape, dtype and code against the header."""
    try:
        task = header["task"]
        layers = header["layers"]
        inp = header["input"]
        n_out = int(header["num_outputs"])
        if task not in ("char-lm", "word-lm", "classify") or not isinstance(layers, list) or not layers:
            raise ModelFormatError("header has an unknown task or no layers")
        if inp["kind"] not in ("onehot", "embedding", "dense"):
            raise ModelFormatError(f"unknown input kind {inp['kind']!r}")
        if inp["kind"] == "embedding":
            _expect(tensors, "embed.weight", (inp["vocab"], inp["size"]), np.float32)
        expected = {"out.weight", "out.bias"} | ({"embed.weight"} if inp["kind"] == "embedding" else set())
        n_in = int(inp["size"])
        for k, L in enumerate(layers):
            H, mode = int(L["hidden_size"]), L["weights"]
            if int(L["input_size"]) != n_in or H < 1 or mode not in BITS:
                raise ModelFormatError(f"layer {k}: input_size {L['input_size']} (expected {n_in}), "
                                       f"hidden_size {H}, weights {mode!r} are inconsistent")
            T = int(L["bn_steps"]) if L["batch_norm"] else 1
            if T < 1:
                raise ModelFormatError(f"layer {k}: bn_steps must be >= 1")
            for mat, rows in (("w_ih", n_in), ("w_hh", H)):
                name = f"l{k}.{mat}"
                if mode == "fp":
                    _expect(tensors, name, (rows, 4 * H), np.float32)
                else:
                    _expect(tensors, name, (rows, packed_width(4 * H, mode)), np.uint8)
                    unpack_codes(tensors[name], 4 * H, mode)  # raises on invalid codes or padding
                expected.add(name)
            for name, shape in (("s_ih", (T, 4 * H)), ("s_hh", (T, 4 * H)), ("b", (T, 4 * H))):
                _expect(tensors, f"l{k}.{name}", shape, np.float32)
                expected.add(f"l{k}.{name}")
            if L["batch_norm"]:
                for name in ("s_c", "b_c"):
                    _expect(tensors, f"l{k}.{name}", (T, H), np.float32)
                    expected.add(f"l{k}.{name}")
            thr = float(L["threshold"])
            if not (math.isfinite(thr) and thr >= 0):
                raise ModelFormatError(f"layer {k}: pruning threshold {thr} must be finite and >= 0")
            n_in = H
        _expect(tensors, "out.weight", (n_out, n_in), np.float32)
        _expect(tensors, "out.bias", (n_out,), np.float32)
        extra = set(tensors) - expected
        if extra:
            raise ModelFormatError(f"unexpected tensors {sorted(extra)}")
        vocab = header.get("vocab")
        if task != "classify" and (not isinstance(vocab, list) or len(vocab) != n_out):
            raise ModelFormatError("a language model's vocabulary must list one entry per output")
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFormatError(f"the header is malformed ({type(e).__name__}: {e})") from None
