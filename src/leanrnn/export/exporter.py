"""Trained model → ``.lrnn`` file (needs torch; the file itself is read without it)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .format import pack_codes, read_lrnn, write_lrnn


def _np64(t):
    return t.detach().cpu().double().numpy()


def model_to_lrnn(model, config: dict, vocab) -> tuple[dict, dict]:
    """Header and tensors of a ``LanguageModel`` or ``SeqClassifier`` (eval-mode semantics)."""
    from ..tasks.lm import LanguageModel, OneHot
    lstm = model.lstm
    tensors: dict[str, np.ndarray] = {}
    task = config["task"]
    if isinstance(model, LanguageModel):
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
    layers = []
    H = lstm.hidden_size
    for k, q in enumerate(lstm.quantized_weights()):
        mode = q["weights"]
        a = {}
        for mat, key in (("weight_ih", "w_ih"), ("weight_hh", "w_hh")):
            if mode == "fp":
                tensors[f"l{k}.{key}"] = q[mat]["weight"].t().float().numpy()
                a[key] = 1.0
            else:
                tensors[f"l{k}.{key}"] = pack_codes(q[mat]["codes"].t().numpy(), mode)
                a[key] = q[mat]["scale"]
        bias = np.zeros(4 * H) if q["bias"] is None else _np64(q["bias"])
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
                tensors[f"l{k}.{name}"] = np.broadcast_to(v, (T, v.shape[1])).astype(np.float32)
        else:
            T = 1
            tensors[f"l{k}.s_ih"] = np.full((1, 4 * H), a["w_ih"], np.float32)
            tensors[f"l{k}.s_hh"] = np.full((1, 4 * H), a["w_hh"], np.float32)
            tensors[f"l{k}.b"] = bias[None].astype(np.float32)
        layers.append({"input_size": inp["size"] if k == 0 else H, "hidden_size": H, "weights": mode,
                       "batch_norm": bool(bn), "bn_steps": T, "threshold": float(q["prune_threshold"])})
    tensors["out.weight"] = out.weight.detach().cpu().float().numpy()
    tensors["out.bias"] = out.bias.detach().cpu().float().numpy()
    header = {"task": task, "vocab": None if vocab is None else list(vocab), "input": inp,
              "num_outputs": int(out.weight.shape[0]), "layers": layers, "config": config}
    return header, tensors


def export_run(run_dir: str | Path, path: str | Path, which: str = "best") -> Path:
    """Export the best (or last) model of a run directory; the file is read back and validated."""
    from ..train import load_run
    cfg, model, vocab = load_run(run_dir, which)
    header, tensors = model_to_lrnn(model, cfg.to_dict(), vocab)
    write_lrnn(path, header, tensors)
    read_lrnn(path)
    return Path(path)


def summary(path: str | Path) -> str:
    """Human-readable summary: each part's bytes and the ratio of the weights to fp32."""
    header, tensors = read_lrnn(path)
    lines = [f"{path}: leanrnn format v{header['version']}, task {header['task']}, "
             f"input {header['input']['kind']} ({header['input']['size']}), outputs {header['num_outputs']}"]
    lines.append(f"{'part':<16}{'shape':<22}{'dtype':<9}{'bytes':>12}{'fp32 bytes':>13}{'ratio':>8}")
    total = total_fp = 0
    for k, L in enumerate(header["layers"]):
        lines.append(f"layer {k}: {L['input_size']} -> {L['hidden_size']}, weights {L['weights']}, "
                     f"batch_norm {L['batch_norm']} ({L['bn_steps']} steps), threshold {L['threshold']:.4g}")
    for name in sorted(tensors):
        a = tensors[name]
        nbytes = a.nbytes
        fp = nbytes
        if name.endswith((".w_ih", ".w_hh")) and a.dtype == np.uint8:
            k = int(name[1:name.index(".")])
            fp = a.shape[0] * 4 * header["layers"][k]["hidden_size"] * 4
        total += nbytes
        total_fp += fp
        lines.append(f"{name:<16}{tuple(a.shape)!s:<22}{a.dtype!s:<9}{nbytes:>12,}{fp:>13,}{fp / nbytes:>7.1f}x")
    w = [n for n in tensors if n.endswith((".w_ih", ".w_hh"))]
    wb = sum(tensors[n].nbytes for n in w)
    wfp = sum(tensors[n].shape[0] * 4 * header["layers"][int(n[1:n.index('.')])]["hidden_size"] * 4 for n in w)
    lines.append(f"LSTM weight matrices: {wb:,} bytes vs {wfp:,} in fp32 ({wfp / wb:.1f}x smaller)")
    lines.append(f"whole file contents: {total:,} bytes vs {total_fp:,} with fp32 weights ({total_fp / total:.1f}x)")
    return "\n".join(lines)
