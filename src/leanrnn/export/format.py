"""The ``.lrnn`` model file: safetensors tensors plus a JSON header, read without executing code.

Torch-free (numpy + safetensors) so that ``leanrnn.runtime`` can read it on a device with no torch.

Layout, version 3 (versions 1 and 2 still read; they differ only in the ternary packing and lack
the optional parts). Every weight matrix is stored transposed, ``(in_features, out_features)``,
so the weights that multiply one input or state entry (a *column* of ``W``) are contiguous and a
zero state entry skips one contiguous run. Codes are packed along the output axis, in the digits of
``facts.CODE_ENCODING``:

* ternary, base 3 (version 3): digit ``0`` = 0, ``1`` = +1, ``2`` = -1; five per byte, ``byte =
  d0 + 3 d1 + 9 d2 + 27 d3 + 81 d4`` with the first code in ``d0`` (1.6 bits per weight; bytes
  from 243 up are invalid). Versions 1 and 2: 2-bit fields ``00`` = 0, ``01`` = +1, ``10`` = -1
  (``11`` invalid), four per byte, the first in the lowest bits;
* binary, 1 bit: ``1`` = +1, ``0`` = -1; eight per byte, the first in the lowest bit.

Padding codes past the end of a row are 0 (their digits zero), so every model has one encoding.

Tensors of layer ``k`` are named ``l{k}.*``: ``w_ih (n_in, 4H)``, ``w_hh (R, 4H)`` and the
per-gate tables below, where ``R`` is ``proj_size`` with a projection (LSTMP, ``proj_size`` in the
layer's header entry) and ``H`` otherwise. A projection adds ``w_hr (H, P)`` and its per-row scale
``s_hr (1, P)``: ``r = s_hr * (C_hr . h)``; ``r`` (or ``h`` without projection) is what is pruned
(``|r| >= threshold`` kept), fed back to ``w_hh`` and passed on; with ``"prune_output": false`` in a
direction's header entry only the copy fed back is pruned and the unpruned ``r`` is passed on. A bidirectional layer (a
``reverse`` entry with the reverse direction's ``bn_steps`` and ``threshold``; classifiers only,
every layer or none) adds the same tensors under ``l{k}_reverse.*``: that direction reads each
sequence from its end, its time step ``t`` counting from there, and the layer's output is both
directions' ``r`` side by side, so the next layer (or the output layer of a classifier, which reads
the forward direction's final state and the reverse direction's state after the first element)
takes ``2R`` features.

Batch norm is folded exactly into per-gate scales and shifts for each stored time step ``t``
(steps past the last reuse it): ``z_t = S_ih[t] * (C_ih . x) + S_hh[t] * (C_hh . h) + B[t]`` and
``c_hat = S_c[t] * c + B_c[t]``, where ``C`` are the codes and ``S`` carries the weight scale ``a``.

With one row of normalization statistics for all steps (``bn_stats="shared"``, weight
normalization, or none) every table has one row: per-gate vectors, nothing per step. A per-row
weight scale (weight normalization) is folded into ``S`` like the scalar one. Optional compact
storage: the per-gate tables in float16, and the embedding and output layer as int8 with one
float32 scale per row (``embed.scale``, ``out.scale``): ``W[r] = scale[r] * q[r]``.

The header holds the format version, task, vocabulary, every layer's shapes and modes, the pruning
thresholds, optionally the input preprocessing of a classifier (``preprocess``: ``x = raw[order] *
scale``, with ``raw_max`` the largest raw value), and a SHA-256 over the header (without the
checksum) and every tensor's bytes.

Reading trusts nothing in the file (``read_lrnn``): the header text is bounded in size and nesting
*before* it is parsed (so no parser recursion can overflow), parsed without ``NaN``/``Infinity`` or
duplicate keys, checked field by field against a strict schema (``check_header``: exact JSON types,
finite numbers, bounded sizes, consistent task/input/vocabulary), and only then are the tensors
matched to it (``validate``: exact dtype and shape, finite floats, valid codes). Every defect is a
``ModelFormatError`` whose message names the field and the fix; nothing else escapes.

Codes decode through a lookup table per layout (a byte value -> its 5, 4 or 8 codes) straight into
int8, a row block at a time: loading needs one byte per weight (the runtime's int8 codes) and no
wider temporaries, and the kernels never see the packing.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import reprlib
from pathlib import Path

import numpy as np

from ..facts import CODE_ENCODING, TASKS, WEIGHT_MODES

FORMAT, VERSION = "leanrnn", 3
OLDEST_VERSION = 1           # version 1: the layout of version 2 without its optional parts
BASE3_VERSION = 3            # ternary codes packed base 3 from this version on, 2-bit fields before
MAX_HEADER_CHARS = 1 << 25   # a 1 M-word vocabulary fits with room to spare
MAX_DEPTH = 16               # the exporter writes 4 levels (header -> config -> dict -> list)
MAX_SIZE = 1 << 20           # features, hidden units, vocabulary entries, outputs
MAX_LAYERS = 64
MAX_BN_STEPS = 1 << 16
FLOAT32_MAX = float(np.finfo(np.float32).max)
FIX = "export the model again with: leanrnn export RUN_DIR -o FILE.lrnn"


class ModelFormatError(ValueError):
    """The file is not a valid .lrnn model; the message (always one line) says what is wrong."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# -- packing ----------------------------------------------------------------------------------------

def _per(mode: str, version: int = VERSION) -> tuple[int, int]:
    """Codes per byte and the radix of one code's digit (``2 ** bits`` for bit fields)."""
    if mode == "ternary":
        return (5, 3) if version >= BASE3_VERSION else (4, 4)
    if mode == "binary":
        return 8, 2
    raise ValueError(f"cannot pack mode {mode!r}: expected 'binary' or 'ternary'")


def _digits(codes: np.ndarray, mode: str) -> np.ndarray:
    """Code -> digit (ternary 0 / +1 / -1 -> 0 / 1 / 2, binary -1 / +1 -> 0 / 1), as ``facts`` encodes them."""
    enc = CODE_ENCODING[mode]
    if not np.isin(codes, list(enc)).all():
        raise ValueError(f"{mode} codes must be {' or '.join(f'{c:+d}' for c in sorted(enc))}")
    out = np.zeros(codes.shape, np.uint8)
    for c, d in enc.items():
        out[codes == c] = d
    return out


def pack_codes(codes: np.ndarray, mode: str, version: int = VERSION) -> np.ndarray:
    """Pack int8 codes of shape ``(rows, n)`` along the last axis into uint8, in the layout of
    format ``version`` (ternary: base 3 from version 3, 2-bit fields before)."""
    per, radix = _per(mode, version)
    codes = np.asarray(codes, dtype=np.int8)
    rows, n = codes.shape
    v = _digits(codes, mode)
    v = np.pad(v, ((0, 0), (0, (-n) % per))).reshape(rows, -1, per).astype(np.uint16)
    weights = (radix ** np.arange(per)).astype(np.uint16)
    return (v * weights).sum(2).astype(np.uint8)


def _tables():
    """Per layout, the (256, per) int8 codes of every byte value and which bytes are invalid."""
    b = np.arange(256)
    out = {}
    for mode, per, radix in (("ternary", 4, 4), ("ternary", 5, 3), ("binary", 8, 2)):
        d = (b[:, None] // radix ** np.arange(per)) % radix          # (256, per) digits
        lut = np.zeros(d.shape, np.int8)
        for c, digit in CODE_ENCODING[mode].items():
            lut[d == digit] = c
        bad = (d >= len(CODE_ENCODING[mode])).any(1) | (b >= radix ** per)
        out[mode, per] = (lut, bad)
    return out


_LUT = _tables()
_BLOCK = 1 << 20  # packed bytes decoded per block


def check_codes(packed: np.ndarray, n: int, mode: str, version: int = VERSION) -> None:
    """Raise ModelFormatError unless ``packed`` holds valid ``(rows, n)`` codes with zero padding."""
    per, radix = _per(mode, version)
    width = packed_width(n, mode, version)
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 2 \
            or packed.shape[1] != width:
        raise ModelFormatError(f"packed {mode} codes for {n} columns must be uint8 (rows, {width}), got "
                               f"{getattr(packed, 'dtype', type(packed).__name__)}{getattr(packed, 'shape', '')}; "
                               f"{FIX}")
    bad = _LUT[mode, per][1][packed]
    if bad.any():
        v = int(packed[bad].flat[0])
        what = "the invalid value 0b11" if radix == 4 else f"the invalid value {v} (base-3 bytes are below 243)"
        raise ModelFormatError(f"{mode} weight codes hold {what}; {FIX}")
    rem = n - (width - 1) * per  # codes held by the last byte of a row
    if rem < per and (packed[:, -1] >= radix ** rem).any():
        raise ModelFormatError(f"packed weight codes have non-zero padding; {FIX}")


def unpack_codes(packed: np.ndarray, n: int, mode: str, version: int = VERSION) -> np.ndarray:
    """Inverse of ``pack_codes`` (same ``version``): C-contiguous int8 codes ``(rows, n)``; raises
    ModelFormatError on invalid codes."""
    check_codes(packed, n, mode, version)
    lut = _LUT[mode, _per(mode, version)[0]][0]
    rows = packed.shape[0]
    out = np.empty((rows, n), np.int8)
    step = max(1, _BLOCK // max(packed.shape[1], 1))
    for r in range(0, rows, step):
        block = lut[packed[r:r + step]]               # (rows, bytes, per) int8
        out[r:r + step] = block.reshape(block.shape[0], -1)[:, :n]
    return out


def packed_width(n: int, mode: str, version: int = VERSION) -> int:
    """Bytes per row of ``n`` packed codes."""
    return -(-n // _per(mode, version)[0])


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
    """Write atomically (a ``.tmp`` beside it, then a rename; removed on failure). Raises
    ``OSError`` with a one-line message when ``path`` is a folder or its folder does not exist."""
    from safetensors.numpy import save_file
    header = dict(header, format=FORMAT, version=VERSION)
    header["checksum"] = checksum(header, tensors)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name such as {path / 'model.lrnn'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {path.parent} does not exist; create it first or choose another")
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp),
                  metadata={"leanrnn": json.dumps(header)})
        tmp.replace(path)
    except Exception as e:  # safetensors raises its own error type for unwritable paths
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise
        raise OSError(f"cannot write {path} ({type(e).__name__}: {e})") from None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of JSON text, counted without parsing (strings skipped)."""
    b = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode()
    a = np.frombuffer(b, np.uint8)
    step = np.where((a == ord("[")) | (a == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(step).max()) if a.size else 0


def _no_constant(name):
    raise ValueError(f"non-finite number {name}")


def _finite_float(s):
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"number {s} overflows a float")
    return v


def _no_duplicates(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set = set()
        raise ValueError(f"duplicate key {next(k for k, _ in pairs if k in seen or seen.add(k))!r}")
    return d


def parse_header(text) -> dict:
    """The header's JSON text → dict, refusing oversized, too deeply nested or non-finite input."""
    if not isinstance(text, str):
        raise ModelFormatError(f"the header must be JSON text, got {type(text).__name__}; {FIX}")
    if len(text) > MAX_HEADER_CHARS:
        raise ModelFormatError(f"the header has {len(text):,} characters, more than {MAX_HEADER_CHARS:,}; {FIX}")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise ModelFormatError(f"the header nests {depth} levels deep, more than {MAX_DEPTH}; {FIX}")
    try:
        header = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                            object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError, TypeError) as e:
        raise ModelFormatError(f"the header is not valid JSON ({type(e).__name__}: {e}); {FIX}") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"the header must be a JSON object, got {type(header).__name__}; {FIX}")
    return header


def read_lrnn(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and fully validate a model file: ``(header, tensors)``; any defect is a ModelFormatError."""
    from safetensors import safe_open
    path = Path(path)
    if path.is_dir():
        raise ModelFormatError(f"{path} is a folder, not a .lrnn file; make one with: "
                               f"leanrnn export {path} -o model.lrnn")
    if not path.is_file():
        raise ModelFormatError(f"{path} does not exist; create it with: leanrnn export RUN_DIR -o {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            text = meta.get("leanrnn")
            if text is None:
                raise ModelFormatError(f"{path} has no leanrnn header; is it a leanrnn export? {FIX}")
            header = parse_header(text)
            if header.get("format") != FORMAT:
                raise ModelFormatError(f"{path} is not a leanrnn model (its format field is not {FORMAT!r}); {FIX}")
            v = header.get("version")
            if type(v) is not int or not OLDEST_VERSION <= v <= VERSION:
                raise ModelFormatError(f"{path} has format version {v!r}; this leanrnn reads versions "
                                       f"{OLDEST_VERSION} to {VERSION}: export the model again with this version")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open is not iterable)
    except ModelFormatError as e:
        raise ModelFormatError(str(e) if str(e).startswith(str(path)) else f"{path}: {e}") from None
    except Exception as e:  # safetensors raises its own error types for truncated or garbled files
        raise ModelFormatError(f"{path} is not a readable .lrnn file ({type(e).__name__}: {e}); "
                               "export the model again") from None
    if header.get("checksum") != checksum(header, tensors):
        raise ModelFormatError(f"{path} is corrupted: its checksum does not match its contents; {FIX}")
    try:
        validate(header, tensors)
    except ModelFormatError as e:
        raise ModelFormatError(f"{path}: {e}") from None
    return header, tensors


# -- schema -----------------------------------------------------------------------------------------

def _show(v) -> str:
    return f"{reprlib.repr(v)} ({type(v).__name__})"


def _bad(where: str, want: str, v) -> ModelFormatError:
    return ModelFormatError(f"header field {where} must be {want}, got {_show(v)}; {FIX}")


def _int(v, where: str, lo: int = 1, hi: int = MAX_SIZE) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise _bad(where, f"an integer in [{lo}, {hi:,}]", v)
    return v


def _keys(d, where: str, required: set, optional: set = frozenset()) -> dict:
    if type(d) is not dict:
        raise _bad(where, "a JSON object", d)
    missing, unknown = required - d.keys(), d.keys() - required - optional
    if missing or unknown:
        problems = [f"lacks {sorted(missing)}"] if missing else []
        problems += [f"has unknown keys {sorted(unknown)}"] if unknown else []
        raise ModelFormatError(f"header field {where} " + "; ".join(problems) + f"; {FIX}")
    return d


def _walk_finite(v, where: str, depth: int = 0) -> None:
    """Every number anywhere in the header finite, nesting bounded (no bool/int/float confusion here)."""
    if depth > MAX_DEPTH:
        raise ModelFormatError(f"header field {where} nests more than {MAX_DEPTH} levels; {FIX}")
    if type(v) is float and not math.isfinite(v):
        raise _bad(where, "a finite number", v)
    if type(v) is dict:
        for k, x in v.items():
            if type(k) is not str:
                raise _bad(where, "an object with string keys", k)
            _walk_finite(x, f"{where}.{k}", depth + 1)
    elif type(v) is list:
        for i, x in enumerate(v):
            _walk_finite(x, f"{where}[{i}]", depth + 1)
    elif v is not None and type(v) not in (str, int, float, bool):
        raise _bad(where, "a JSON value", v)


def check_header(header) -> None:
    """The header's schema: exact types, finite bounded values, consistent task/input/vocabulary."""
    _keys(header, "(top level)", {"format", "version", "checksum", "task", "vocab", "input", "num_outputs",
                                  "layers", "config"}, {"preprocess"})
    _walk_finite(header, "header")
    if header["format"] != FORMAT:
        raise _bad("format", repr(FORMAT), header["format"])
    _int(header["version"], "version", OLDEST_VERSION, VERSION)
    if type(header["checksum"]) is not str:
        raise _bad("checksum", "a hex string", header["checksum"])
    task = header["task"]
    if type(task) is not str or task not in TASKS:
        raise _bad("task", f"one of {list(TASKS)}", task)
    n_out = _int(header["num_outputs"], "num_outputs")
    if type(header["config"]) is not dict:
        raise _bad("config", "a JSON object", header["config"])
    inp = header["input"]
    kind = _keys(inp, "input", {"kind", "size"}, {"vocab"}).get("kind")
    lm = task != "classify"
    kinds = ("onehot", "embedding") if lm else ("dense",)
    if type(kind) is not str or kind not in kinds:
        raise _bad("input.kind", f"one of {list(kinds)} for task {task!r}", kind)
    size = _int(inp["size"], "input.size")
    if lm:
        if _int(inp.get("vocab"), "input.vocab") != n_out:
            raise _bad("input.vocab", f"num_outputs ({n_out}): a language model predicts its own tokens",
                       inp["vocab"])
        if kind == "onehot" and size != inp["vocab"]:
            raise _bad("input.size", f"input.vocab ({inp['vocab']}) for one-hot input", size)
    elif inp.get("vocab") is not None:
        raise _bad("input.vocab", "absent for dense input", inp["vocab"])
    if header.get("preprocess") is not None:
        _check_preprocess(header["preprocess"], lm)
    vocab = header["vocab"]
    if vocab is not None or lm:
        if type(vocab) is not list or len(vocab) != n_out:
            raise _bad("vocab", f"a list of num_outputs ({n_out}) strings", vocab)
        for i, s in enumerate(vocab):
            if type(s) is not str:
                raise _bad(f"vocab[{i}]", "a string", s)
        if len(set(vocab)) != n_out:
            seen: set = set()
            dup = next(s for s in vocab if s in seen or seen.add(s))
            raise _bad("vocab", "distinct strings, but repeats", dup)
    layers = header["layers"]
    if type(layers) is not list or not 1 <= len(layers) <= MAX_LAYERS:
        raise _bad("layers", f"a list of 1 to {MAX_LAYERS} layers", layers)
    n_in = size
    for k, L in enumerate(layers):
        w = f"layers[{k}]"
        _keys(L, w, {"input_size", "hidden_size", "weights", "batch_norm", "bn_steps", "threshold"},
              {"proj_size", "reverse", "prune_output"})
        if _int(L["input_size"], f"{w}.input_size") != n_in:
            raise _bad(f"{w}.input_size", f"{n_in} (the size of what feeds it)", L["input_size"])
        H = _int(L["hidden_size"], f"{w}.hidden_size")
        if type(L["weights"]) is not str or L["weights"] not in WEIGHT_MODES:
            raise _bad(f"{w}.weights", f"one of {list(WEIGHT_MODES)}", L["weights"])
        if type(L["batch_norm"]) is not bool:
            raise _bad(f"{w}.batch_norm", "true or false", L["batch_norm"])
        for part in ("proj_size", "reverse", "prune_output"):
            if part in L and header["version"] < BASE3_VERSION:
                raise _bad(f"{w}.{part}", f"absent in a version {header['version']} file (it came with version "
                           f"{BASE3_VERSION})", L[part])
        _direction(L, w, L["batch_norm"])
        R = _int(L["proj_size"], f"{w}.proj_size", 1, H - 1) if "proj_size" in L else H
        if "reverse" in L:
            if lm:
                raise _bad(f"{w}.reverse", "absent: a language model predicts the next token, so it cannot read "
                           "its sequence backwards", L["reverse"])
            _direction(_keys(L["reverse"], f"{w}.reverse", {"bn_steps", "threshold"}, {"prune_output"}),
                       f"{w}.reverse",
                       L["batch_norm"])
        if ("reverse" in L) != ("reverse" in layers[0]):
            raise _bad(f"{w}.reverse", f"{'present' if 'reverse' in layers[0] else 'absent'} as in layers[0]: "
                       "every layer of a bidirectional LSTM has both directions", L.get("reverse"))
        n_in = R * (2 if "reverse" in L else 1)


def _direction(d: dict, w: str, batch_norm: bool) -> None:
    """``bn_steps`` and ``threshold`` of one direction of a layer."""
    _int(d["bn_steps"], f"{w}.bn_steps", 1, MAX_BN_STEPS if batch_norm else 1)
    thr = d["threshold"]
    if type(thr) not in (int, float) or not 0 <= thr <= FLOAT32_MAX:
        raise _bad(f"{w}.threshold", "a finite number >= 0", thr)
    if "prune_output" in d and d["prune_output"] is not False:
        raise _bad(f"{w}.prune_output", "false, or absent (the output is the pruned state)", d["prune_output"])


def _check_preprocess(p, lm: bool) -> None:
    _keys(p, "preprocess", {"scale", "raw_max", "order", "source"})
    if lm:
        raise _bad("preprocess", "absent for a language model (token ids need none)", p)
    for name in ("scale", "raw_max"):
        v = p[name]
        if type(v) not in (int, float) or not 0 < v <= FLOAT32_MAX:
            raise _bad(f"preprocess.{name}", "a finite number > 0", v)
    if type(p["source"]) is not str:
        raise _bad("preprocess.source", "a string", p["source"])
    order = p["order"]
    if order is not None and (type(order) is not list or not 1 <= len(order) <= MAX_SIZE
                              or any(type(i) is not int for i in order) or sorted(order) != list(range(len(order)))):
        raise _bad("preprocess.order", "null or a permutation of 0 .. n-1", order)


def _expect(tensors, name, shape, dtype):
    """``dtype`` is one dtype or a tuple of the dtypes allowed."""
    if name not in tensors:
        raise ModelFormatError(f"tensor {name!r} is missing; {FIX}")
    a = tensors[name]
    allowed = tuple(np.dtype(d) for d in (dtype if isinstance(dtype, tuple) else (dtype,)))
    if not isinstance(a, np.ndarray) or tuple(a.shape) != tuple(shape) or a.dtype not in allowed:
        want = " or ".join(f"{d}{tuple(shape)}" for d in allowed)
        raise ModelFormatError(f"tensor {name!r} is {getattr(a, 'dtype', type(a).__name__)}"
                               f"{tuple(getattr(a, 'shape', ()))}, expected {want}; {FIX}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ModelFormatError(f"tensor {name!r} holds non-finite values; {FIX}")


def _expect_matrix(tensors, name: str, shape, expected: set) -> None:
    """A float32 matrix, or int8 with a finite float32 scale per row (``<part>.scale``)."""
    _expect(tensors, name, shape, (np.float32, np.int8))
    expected.add(name)
    if tensors[name].dtype == np.int8:
        sname = name.rsplit(".", 1)[0] + ".scale"
        _expect(tensors, sname, shape[:1], np.float32)
        expected.add(sname)
        if (np.abs(tensors[sname]) * 127 > FLOAT32_MAX).any():  # a weight scale * code must stay finite
            raise ModelFormatError(f"tensor {sname} holds scales whose weights overflow float32; {FIX}")


def directions(header: dict) -> list[tuple[int, bool, str, dict]]:
    """Per layer direction of a checked header, in ``h_n``'s order (``k * num_directions + d``):
    ``(k, reverse, tensor prefix, {"bn_steps", "threshold"})``. The reverse direction's tensors
    are named ``l{k}_reverse.*``, as ``nn.LSTM`` names its parameters."""
    out = []
    for k, L in enumerate(header["layers"]):
        out.append((k, False, f"l{k}", L))
        if "reverse" in L:
            out.append((k, True, f"l{k}_reverse", L["reverse"]))
    return out


def output_size(L: dict) -> int:
    """Width of one direction's output (and of the state it feeds back): ``proj_size`` or ``hidden_size``."""
    return L.get("proj_size", L["hidden_size"])


def validate(header: dict, tensors: dict[str, np.ndarray]) -> None:
    """Check the header's schema, then every tensor's presence, dtype, shape, finiteness and codes."""
    check_header(header)
    version = header["version"]
    inp = header["input"]
    expected = {"out.weight", "out.bias"}
    if inp["kind"] == "embedding":
        _expect_matrix(tensors, "embed.weight", (inp["vocab"], inp["size"]), expected)
    for k, _, pre, d in directions(header):
        L = header["layers"][k]
        H, mode, n_in, R = L["hidden_size"], L["weights"], L["input_size"], output_size(L)
        T = d["bn_steps"]
        mats = [("w_ih", n_in, 4 * H), ("w_hh", R, 4 * H)] + ([("w_hr", H, R)] if "proj_size" in L else [])
        for mat, rows, cols in mats:
            name = f"{pre}.{mat}"
            if mode == "fp":
                _expect(tensors, name, (rows, cols), np.float32)
            else:
                _expect(tensors, name, (rows, packed_width(cols, mode, version)), np.uint8)
                try:
                    check_codes(tensors[name], cols, mode, version)
                except ModelFormatError as e:
                    raise ModelFormatError(f"tensor {name!r}: {e}") from None
            expected.add(name)
        names = [("s_ih", T, 4 * H), ("s_hh", T, 4 * H), ("b", T, 4 * H)]
        names += [("s_c", T, H), ("b_c", T, H)] if L["batch_norm"] else []
        names += [("s_hr", 1, R)] if "proj_size" in L else []
        for name, rows, width in names:
            _expect(tensors, f"{pre}.{name}", (rows, width), (np.float32, np.float16))
            expected.add(f"{pre}.{name}")
    top = header["layers"][-1]
    width = output_size(top) * (2 if "reverse" in top else 1)
    _expect_matrix(tensors, "out.weight", (header["num_outputs"], width), expected)
    _expect(tensors, "out.bias", (header["num_outputs"],), np.float32)
    extra = set(tensors) - expected
    if extra:
        raise ModelFormatError(f"unexpected tensors {sorted(extra)}; {FIX}")
