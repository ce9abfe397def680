"""The typed, torch-free model spec: what a validated ``.lrnn`` file says, one dataclass per part.

``model_spec(header, tensors)`` turns a validated file into a ``ModelSpec``; the runtime, the
accelerator model (``leanrnn.hw``) and the fixed-point reference read the spec's fields instead
of the file's tensor names. ``ModelSpec.layers`` holds one ``LayerSpec`` per layer direction, in
``h_n``'s order. Everything is decoded once: codes as int8 ``(in, out)`` (one row per input entry,
see ``format``), per-gate vectors and tables as float32 ``(T, ...)`` whatever their
stored width (fp16 tables are widened), int8 embedding and output layers dequantized with their
per-row scales (``W[r] = scale[r] * q[r]``), so every consumer computes with the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .format import VERSION, directions, output_size, read_lrnn, unpack_codes


@dataclass(frozen=True)
class Preprocess:
    """Input preprocessing the model was trained with: ``x = raw[order] * scale`` per step.

    ``raw_max`` is the largest raw value (e.g. 16 for the 8x8 digits, 255 for MNIST): inputs above
    ``scale * raw_max`` (with a little slack) are raw values that still need ``scale``."""
    scale: float
    raw_max: float
    order: np.ndarray | None   # pixel order of a permuted task, or None
    source: str

    @classmethod
    def from_header(cls, d: dict | None) -> Preprocess | None:
        if d is None:
            return None
        order = None if d["order"] is None else np.asarray(d["order"], np.int64)
        return cls(float(d["scale"]), float(d["raw_max"]), order, d["source"])


@dataclass(frozen=True)
class InputSpec:
    kind: str                    # "onehot", "embedding" or "dense"
    size: int                    # width of the vector fed to layer 0
    vocab: int | None            # token ids in [0, vocab) for language models
    embed: np.ndarray | None     # (vocab, size) float32 for "embedding"
    int8: bool                   # the embedding is stored as int8 with per-row scales
    preprocess: Preprocess | None


@dataclass(frozen=True)
class LayerSpec:
    """One direction of one LSTM layer: ``z = s_ih[t] * (W_ih^T x) + s_hh[t] * (W_hh^T r) + b[t]``
    per gate row (order i, f, g, o), ``c_hat = s_c[t] * c + b_c[t]`` when ``s_c`` is given, ``t``
    clamped to ``steps - 1``; ``h = sigmoid(o) * tanh(c_hat)``; the output and state fed back is
    ``r = h``, or ``r = s_hr * (W_hr^T h)`` with a projection, zeroed where ``|r| < threshold``
    (with ``prune_output`` false only the copy fed back is zeroed; the output is ``r`` unpruned).
    ``W`` are int8 codes (binary, ternary) or float32 weights (fp). A reverse direction reads its
    sequence backwards, ``t`` counting from the sequence's last element."""
    index: int                   # position in ``ModelSpec.layers``: ``layer * directions + reverse``
    input_size: int
    hidden_size: int
    weights: str                 # "fp", "binary" or "ternary"
    w_ih: np.ndarray             # (input_size, 4H) int8 codes, float32 for "fp"
    w_hh: np.ndarray             # (R, 4H), R = output_size
    s_ih: np.ndarray             # (steps, 4H) float32
    s_hh: np.ndarray
    b: np.ndarray
    s_c: np.ndarray | None       # (steps, H) float32, None without normalization of c
    b_c: np.ndarray | None
    threshold: float             # |r| below it is fed back as 0
    layer: int = 0               # the layer this direction belongs to
    reverse: bool = False
    w_hr: np.ndarray | None = None   # (H, P) projection codes (float32 for "fp"), None without projection
    s_hr: np.ndarray | None = None   # (P,) float32 per-row scale of the projection
    prune_output: bool = True    # the output is the pruned r (else only the state fed back is pruned)

    @property
    def steps(self) -> int:
        return int(self.s_ih.shape[0])

    @property
    def norm_c(self) -> bool:
        return self.s_c is not None

    @property
    def proj_size(self) -> int:
        """``P``, 0 without projection."""
        return 0 if self.w_hr is None else int(self.w_hr.shape[1])

    @property
    def output_size(self) -> int:
        """``R``: the width of ``r``, the output and the state fed back."""
        return self.proj_size or self.hidden_size


@dataclass(frozen=True)
class OutputSpec:
    weight: np.ndarray           # (num_outputs, H) float32
    bias: np.ndarray             # (num_outputs,)
    int8: bool                   # stored as int8 with per-row scales


@dataclass(frozen=True)
class ModelSpec:
    task: str
    vocab: list[str] | None
    input: InputSpec
    layers: tuple[LayerSpec, ...]   # per layer direction, in ``h_n``'s order (``k * directions + d``)
    output: OutputSpec
    header: dict                 # the file's header, as read (config, version, checksum)

    @property
    def is_lm(self) -> bool:
        return self.input.kind != "dense"

    @property
    def bidirectional(self) -> bool:
        return any(L.reverse for L in self.layers)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def num_outputs(self) -> int:
        return int(self.output.bias.shape[0])


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _dequant(tensors: dict, name: str) -> tuple[np.ndarray, bool]:
    w = tensors[name]
    if w.dtype == np.int8:
        scale = tensors[name.rsplit(".", 1)[0] + ".scale"].astype(np.float32)
        return _f32(w.astype(np.float32) * scale[:, None]), True
    return _f32(w), False


def model_spec(header: dict, tensors: dict) -> ModelSpec:
    """The spec of a *validated* ``(header, tensors)`` pair (``read_lrnn``'s or ``validate``d)."""
    inp = header["input"]
    embed, e8 = _dequant(tensors, "embed.weight") if inp["kind"] == "embedding" else (None, False)
    ispec = InputSpec(inp["kind"], int(inp["size"]), inp.get("vocab"), embed, e8,
                      Preprocess.from_header(header.get("preprocess")))
    layers = []
    version = header.get("version", VERSION)
    for k, rev, pre, d in directions(header):
        L = header["layers"][k]
        H, mode, R = int(L["hidden_size"]), L["weights"], output_size(L)
        mats = {"w_ih": 4 * H, "w_hh": 4 * H} | ({"w_hr": R} if "proj_size" in L else {})
        if mode == "fp":
            w = {m: _f32(tensors[f"{pre}.{m}"]) for m in mats}
        else:
            w = {m: unpack_codes(tensors[f"{pre}.{m}"], n, mode, version) for m, n in mats.items()}
        t = {n: _f32(tensors[f"{pre}.{n}"]) for n in ("s_ih", "s_hh", "b", "s_c", "b_c", "s_hr")
             if f"{pre}.{n}" in tensors}
        layers.append(LayerSpec(len(layers), int(L["input_size"]), H, mode, w["w_ih"], w["w_hh"], t["s_ih"],
                                t["s_hh"], t["b"], t.get("s_c"), t.get("b_c"), float(d["threshold"]), k, rev,
                                w.get("w_hr"), t["s_hr"][0] if "s_hr" in t else None,
                                d.get("prune_output", True)))
    w, o8 = _dequant(tensors, "out.weight")
    return ModelSpec(header["task"], header.get("vocab"), ispec, tuple(layers),
                     OutputSpec(w, _f32(tensors["out.bias"]), o8), header)


def read_spec(path: str | Path) -> ModelSpec:
    """Read, validate (ModelFormatError on any defect) and decode a model file."""
    return model_spec(*read_lrnn(path))
