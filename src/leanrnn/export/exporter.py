"""Trained model → ``.lrnn`` file (needs torch; the file itself is read without it).

Normalization folds into per-gate scales ``S = g / sqrt(var + eps) * a`` and shifts (see
``format``), where ``a`` is the weight scale: a scalar, or one value per gate row with weight
normalization. Running statistics with one row (``bn_stats="shared"``) give one-row tables.

``compact=True`` stores the embedding and output layer as int8 with a per-row scale
``s_r = max_j |W_rj| / 127`` (``q = round(W / s_r)``, so each weight moves by at most ``s_r / 2``)
and the per-gate tables as float16 (relative rounding ``2^-11``): a smaller file whose metric moves
a little (tested within 0.005 bits/char of torch eval), where the default is exact to float32.

Each direction of each layer (``quantized_weights()``, in ``h_n``'s order) is written under its own
prefix (``l{k}`` or ``l{k}_reverse``); a projection's codes and per-row scale go to ``w_hr`` and
``s_hr`` (``s_hr`` = 1 for fp weights, which are stored as they are). The result is validated
against the format before it is returned: a model the format cannot hold is an ``ExportError``
(one line), never a file that does not load.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .format import FIX, FORMAT, VERSION, ModelFormatError, output_size, pack_codes, read_lrnn, validate, write_lrnn


def _np64(t):
    return t.detach().cpu().double().numpy()


def _int8_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 codes and float32 scale per row (all-zero rows get scale 1)."""
    w = np.asarray(w, np.float32)
    m = np.abs(w).max(1)
    s = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
    return np.clip(np.rint(w / s[:, None]), -127, 127).astype(np.int8), s


def preprocess_of(config: dict) -> dict | None:
    """The ``preprocess`` header field of a classifier trained on ``config["data"]`` (None when the
    config does not name a known image source: then the file says nothing it cannot vouch for)."""
    import torch

    from ..data.sources import IMAGE_PIXELS as _IMAGE_RAW_MAX
    from ..data.sources import PERMUTE_SEED as _PERMUTE_SEED
    if config.get("task") != "classify" or config.get("data") not in _IMAGE_RAW_MAX:
        return None
    raw_max, n = _IMAGE_RAW_MAX[config["data"]]
    order = None
    if config.get("permute"):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_PERMUTE_SEED)).tolist()
    return {"scale": 1.0 / raw_max, "raw_max": raw_max, "order": order, "source": config["data"]}


def _scale(q: dict) -> np.ndarray | float:
    s = q["scale"]
    return float(s) if np.ndim(s) == 0 else np.asarray(s.detach().cpu().double().numpy() if hasattr(s, "detach")
                                                        else s, np.float64)


class ExportError(ValueError):
    """The model cannot be written as a ``.lrnn`` file; the message (one line) says why and what to do."""


def _matrix(q: dict, mode: str, tensors: dict, name: str) -> np.ndarray | float:
    """Store ``q`` (``quantized_weights``' dict of a ``(rows, cols)`` matrix) transposed as ``name``;
    returns its weight scale (1 for fp weights, which are stored as they are)."""
    if mode == "fp":
        tensors[name] = np.ascontiguousarray(q["weight"].t().float().numpy())
        return 1.0
    tensors[name] = pack_codes(q["codes"].t().numpy(), mode)
    return _scale(q)


def _fold_direction(q: dict, pre: str, tensors: dict) -> dict:
    """One layer direction's tensors under ``pre``; returns its header part ``{bn_steps, threshold}``."""
    mode = q["weights"]
    rows = lambda m: (m["weight"] if mode == "fp" else m["codes"]).shape[0]  # noqa: E731
    G = rows(q["weight_hh"])
    a = {key: _matrix(q[mat], mode, tensors, f"{pre}.{key}") for mat, key in (("weight_ih", "w_ih"),
                                                                                ("weight_hh", "w_hh"))}
    if q.get("weight_hr") is not None:
        s_hr = _matrix(q["weight_hr"], mode, tensors, f"{pre}.w_hr")
        tensors[f"{pre}.s_hr"] = np.broadcast_to(np.asarray(s_hr, np.float32), (1, rows(q["weight_hr"]))).copy()
    bias = np.zeros(G) if q["bias"] is None else _np64(q["bias"])
    bn = q["batch_norm"]
    if bn:
        def fold(s):
            mean, var = _np64(s["running_mean"]), _np64(s["running_var"])
            if mean.shape[0] == 0:  # never trained: the identity statistics eval mode uses
                mean, var = np.zeros((1, mean.shape[1])), np.ones((1, mean.shape[1]))
            g = _np64(s["gamma"]) / np.sqrt(var + s["eps"])
            return g, -g * mean
        g_ih, m_ih = fold(bn["ih"])
        g_hh, m_hh = fold(bn["hh"])
        g_c, m_c = fold(bn["c"])
        T = max(len(g_ih), len(g_hh), len(g_c))
        s_ih, s_hh, b = g_ih * a["w_ih"], g_hh * a["w_hh"], bias + m_ih + m_hh
        s_c, b_c = g_c, m_c + _np64(bn["c"]["beta"])
        for name, v in (("s_ih", s_ih), ("s_hh", s_hh), ("b", b), ("s_c", s_c), ("b_c", b_c)):
            tensors[f"{pre}.{name}"] = np.broadcast_to(v, (T, v.shape[1])).astype(np.float32)
    else:
        T = 1
        tensors[f"{pre}.s_ih"] = np.broadcast_to(np.asarray(a["w_ih"], np.float32), (1, G)).copy()
        tensors[f"{pre}.s_hh"] = np.broadcast_to(np.asarray(a["w_hh"], np.float32), (1, G)).copy()
        tensors[f"{pre}.b"] = bias[None].astype(np.float32)
    part = {"bn_steps": T, "threshold": float(q["prune_threshold"])}
    if not q.get("prune_output", True):  # absent means true, as in files before the field existed
        part["prune_output"] = False
    return part


def model_to_lrnn(model, config: dict, vocab, compact: bool = False) -> tuple[dict, dict]:
    """Header and tensors of a ``LanguageModel`` or ``SeqClassifier`` (eval-mode semantics);
    ``compact``: int8 embedding and output layer, float16 tables (see the module docstring).
    Bidirectional LSTMs export for classifiers only (ExportError for a language model)."""
    from ..tasks.lm import LanguageModel, OneHot
    lstm = model.lstm
    tensors: dict[str, np.ndarray] = {}
    task = config["task"]
    if isinstance(model, LanguageModel):
        if getattr(lstm, "bidirectional", False):
            raise ExportError("a bidirectional language model cannot run token by token (its reverse direction "
                              "reads the text backwards); train it without --bidirectional")
        if isinstance(model.embed, OneHot):
            inp = {"kind": "onehot", "size": model.embed.num_classes, "vocab": model.embed.num_classes}
        else:
            w = model.embed.weight
            inp = {"kind": "embedding", "size": w.shape[1], "vocab": w.shape[0]}
            tensors["embed.weight"] = w.detach().cpu().float().numpy()
        out = model.decoder
    else:
        inp = {"kind": "dense", "size": lstm.input_size}
        out = model.head
    layers: list[dict] = []
    H, P = lstm.hidden_size, getattr(lstm, "proj_size", 0)
    D = 2 if getattr(lstm, "bidirectional", False) else 1
    for q in lstm.quantized_weights():
        k, rev = q.get("layer", len(layers)), bool(q.get("reverse"))
        part = _fold_direction(q, f"l{k}_reverse" if rev else f"l{k}", tensors)
        if rev:
            layers[k]["reverse"] = part
            continue
        layers.append({"input_size": inp["size"] if k == 0 else D * (P or H), "hidden_size": H,
                       "weights": q["weights"], "batch_norm": bool(q["batch_norm"]), **part}
                      | ({"proj_size": P} if P else {}))
    tensors["out.weight"] = out.weight.detach().cpu().float().numpy()
    tensors["out.bias"] = out.bias.detach().cpu().float().numpy()
    if compact:
        for name, a in tensors.items():
            if a.dtype == np.float32 and name.rsplit(".", 1)[1] in ("s_ih", "s_hh", "b", "s_c", "b_c", "s_hr"):
                if np.abs(a).max(initial=0) > np.finfo(np.float16).max:
                    raise ExportError(f"{name} reaches {np.abs(a).max():.4g}, beyond float16's range: export "
                                      "this model without --compact")
                tensors[name] = a.astype(np.float16)
        for part in ("embed", "out"):
            if f"{part}.weight" in tensors:
                tensors[f"{part}.weight"], tensors[f"{part}.scale"] = _int8_rows(tensors[f"{part}.weight"])
    header = {"task": task, "vocab": None if vocab is None else list(vocab), "input": inp,
              "num_outputs": int(out.weight.shape[0]), "layers": layers, "config": config}
    pre = preprocess_of(config)
    if pre is not None:
        header["preprocess"] = pre
    try:
        validate({"format": FORMAT, "version": VERSION, "checksum": "", **header}, tensors)
    except ModelFormatError as e:
        raise ExportError(f"this model does not fit the .lrnn format: {str(e).replace('; ' + FIX, '')}") from None
    return header, tensors


def export_run(run_dir: str | Path, path: str | Path, which: str = "best", compact: bool = False) -> Path:
    """Export the best (or last) model of a run directory; the file is read back and validated."""
    from ..train import load_run
    cfg, model, vocab = load_run(run_dir, which)
    header, tensors = model_to_lrnn(model, cfg.to_dict(), vocab, compact=compact)
    write_lrnn(path, header, tensors)
    read_lrnn(path)
    return Path(path)


def _fp32_bytes(header: dict, name: str, a: np.ndarray) -> int:
    """Bytes of tensor ``name`` in the model's fp32 twin: codes, int8 and fp16 as float32, no scales."""
    if name.endswith(".scale"):
        return 0
    if a.dtype == np.uint8:  # packed codes (rows, bytes) of a matrix (rows, cols)
        L = header["layers"][int(name[1:].split(".")[0].split("_")[0])]
        cols = output_size(L) if name.endswith(".w_hr") else 4 * L["hidden_size"]
        return a.shape[0] * cols * 4
    return a.size * 4


def summary(path: str | Path) -> str:
    """Human-readable summary: each part's bytes against the model's fp32 twin (the same file with
    every tensor in float32), the LSTM matrices' ratio, and the whole file's ratio to its twin."""
    header, tensors = read_lrnn(path)
    lines = [f"{path}: leanrnn format v{header['version']}, task {header['task']}, "
             f"input {header['input']['kind']} ({header['input']['size']}), outputs {header['num_outputs']}"]
    for k, L in enumerate(header["layers"]):
        proj = f" (projected to {L['proj_size']})" if "proj_size" in L else ""
        rev = L.get("reverse")
        both = f"; reverse: {rev['bn_steps']} steps, threshold {rev['threshold']:.4g}" if rev else ""
        lines.append(f"layer {k}: {L['input_size']} -> {L['hidden_size']}{proj}, weights {L['weights']}, "
                     f"batch_norm {L['batch_norm']} ({L['bn_steps']} steps), threshold {L['threshold']:.4g}"
                     f"{', bidirectional' + both if rev else ''}")
    lines.append(f"{'part':<20}{'shape':<18}{'dtype':<9}{'bytes':>12}{'fp32 bytes':>13}{'ratio':>8}")
    total = total_fp = 0
    for name in sorted(tensors):
        a = tensors[name]
        fp = _fp32_bytes(header, name, a)
        total, total_fp = total + a.nbytes, total_fp + fp
        lines.append(f"{name:<20}{tuple(a.shape)!s:<18}{a.dtype!s:<9}{a.nbytes:>12,}{fp:>13,}{fp / a.nbytes:>7.1f}x")
    w = [n for n in tensors if n.endswith((".w_ih", ".w_hh", ".w_hr"))]
    wb = sum(tensors[n].nbytes for n in w)
    wfp = sum(_fp32_bytes(header, n, tensors[n]) for n in w)
    lines.append(f"LSTM weight matrices: {wb:,} bytes vs {wfp:,} in fp32 ({wfp / wb:.1f}x smaller)")
    size = Path(path).stat().st_size
    twin = size - total + total_fp
    lines.append(f"whole file: {size:,} bytes vs {twin:,} for its fp32 twin ({twin / size:.1f}x smaller)")
    return "\n".join(lines)
