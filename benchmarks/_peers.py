"""The peers of ``bench_runtime.py``: the same LSTM language-model step (embedding row → LSTM cell →
64-class output layer) in numpy, PyTorch and ONNX Runtime, each a ``Peer`` whose ``run(ids)`` steps
a batch-1 stream with its state fed back.

All fp32 peers share one set of weights (an ``nn.LSTMCell`` initialization) and are checked against
numpy before timing; the int8 peers are the same weights through each framework's own dynamic
quantization (weights int8 once, activations quantized per call). Gate order: torch's
``i, f, g, o``; ONNX's ``LSTM`` op wants ``i, o, f, c``, so the blocks are reordered for it.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

ORT_HINT = "pip install -e '.[bench]'"


@dataclass
class Peer:
    name: str
    kind: str                      # "fp32", "int8" or "labelled" (timed, never a headline reference)
    framework: str                 # "numpy", "torch", "onnxruntime"
    run: Callable                  # run(ids): step once per token id, state carried between calls
    bytes_per_step: int            # weight bytes one step reads (embedding: one row)
    note: str = ""


class Weights:
    """One random LM: embedding ``(V, X)``, ``nn.LSTMCell(X, H)``, ``nn.Linear(H, V)`` (torch init)."""

    def __init__(self, V: int, X: int, H: int, seed: int = 0):
        torch.manual_seed(seed)
        self.V, self.X, self.H = V, X, H
        self.emb, self.cell, self.lin = nn.Embedding(V, X), nn.LSTMCell(X, H), nn.Linear(H, V)

        def f(t):
            return t.detach().numpy().astype(np.float32)
        self.E, self.W_ih, self.W_hh = f(self.emb.weight), f(self.cell.weight_ih), f(self.cell.weight_hh)
        self.b = f(self.cell.bias_ih + self.cell.bias_hh)
        self.W_out, self.b_out = f(self.lin.weight), f(self.lin.bias)

    def fp32_bytes(self) -> int:
        H, X, V = self.H, self.X, self.V
        return 4 * (4 * H * (X + H) + 4 * H + V * H + V + X)

    def int8_bytes(self) -> int:
        """int8 LSTM and output matrices, fp32 biases (what both dynamic quantizers keep)."""
        H, X, V = self.H, self.X, self.V
        return 4 * H * (X + H) + V * H + 4 * (8 * H + V + X)


# -- numpy ---------------------------------------------------------------------------------------
def numpy_peer(w: Weights) -> Peer:
    """One gemv over ``[x; h]`` with the two matrices side by side (BLAS sgemv), gates in place."""
    X, H = w.X, w.H
    W = np.ascontiguousarray(np.concatenate([w.W_ih, w.W_hh], 1))
    scale = np.full(4 * H, 0.5, np.float32)
    scale[2 * H:3 * H] = 1.0  # sigmoid(z) = 0.5 tanh(z/2) + 0.5 on i, f, o; tanh on g
    xh, c, z = np.zeros(X + H, np.float32), np.zeros(H, np.float32), np.empty(4 * H, np.float32)
    out = [None]

    def run(ids):
        for t in ids:
            xh[:X] = w.E[t]
            np.dot(W, xh, out=z)
            np.add(z, w.b, out=z)
            np.multiply(z, scale, out=z)
            np.tanh(z, out=z)
            i, f, g, o = z[:H] * 0.5 + 0.5, z[H:2 * H] * 0.5 + 0.5, z[2 * H:3 * H], z[3 * H:] * 0.5 + 0.5
            c[:] = f * c + i * g
            h = o * np.tanh(c)
            xh[X:] = h
            out[0] = w.W_out @ h + w.b_out
        return out[0]
    return Peer("numpy fp32 (BLAS)", "fp32", "numpy", run, w.fp32_bytes())


def numpy_batched_peer(w: Weights, B: int) -> Peer:
    """``B`` independent streams in one step: one BLAS sgemm ``[x; h] (B, X+H) @ W (X+H, 4H)``, the
    gates on ``(B, H)`` arrays, one sgemm for the output layer. ``run(ids)`` takes ``(T, B)`` ids."""
    X, H = w.X, w.H
    W = np.ascontiguousarray(np.concatenate([w.W_ih, w.W_hh], 1).T)  # (X+H, 4H)
    Wo = np.ascontiguousarray(w.W_out.T)
    scale = np.full(4 * H, 0.5, np.float32)
    scale[2 * H:3 * H] = 1.0
    xh, c, z = np.zeros((B, X + H), np.float32), np.zeros((B, H), np.float32), np.empty((B, 4 * H), np.float32)
    out = [None]

    def run(ids):
        for t in ids:
            xh[:, :X] = w.E[t]
            np.dot(xh, W, out=z)
            np.add(z, w.b, out=z)
            np.multiply(z, scale, out=z)
            np.tanh(z, out=z)
            i, f, g, o = z[:, :H] * 0.5 + 0.5, z[:, H:2 * H] * 0.5 + 0.5, z[:, 2 * H:3 * H], z[:, 3 * H:] * 0.5 + 0.5
            c[:] = f * c + i * g
            h = o * np.tanh(c)
            xh[:, X:] = h
            out[0] = h @ Wo + w.b_out
        return out[0]
    return Peer(f"numpy fp32 (BLAS), {B} streams", "fp32", "numpy", run, w.fp32_bytes())


# -- torch ---------------------------------------------------------------------------------------
def _torch_runner(emb, core, lin, H: int, cell: bool, ctx=contextlib.nullcontext):
    st = [torch.zeros(1, H), torch.zeros(1, H)] if cell else [torch.zeros(1, 1, H), torch.zeros(1, 1, H)]
    out = [None]

    def run(ids):
        tok = torch.as_tensor(np.asarray(ids, np.int64)).view(-1, 1)
        with torch.inference_mode(), ctx():
            for k in range(tok.shape[0]):
                x = emb(tok[k])
                if cell:
                    st[0], st[1] = core(x, (st[0], st[1]))
                    out[0] = lin(st[0])
                else:
                    y, (st[0], st[1]) = core(x.view(1, 1, -1), (st[0], st[1]))
                    out[0] = lin(y[0])
        return out[0].numpy()[0]
    return run


def torch_peers(w: Weights) -> list[Peer]:
    """``nn.LSTMCell`` with oneDNN off and on, dynamic int8 ``LSTMCell`` and ``LSTM``, and the
    ``nn.LSTM`` stepped one call per token (a labelled row: not what a competent user steps)."""
    H = w.H

    def off():
        return torch.backends.mkldnn.flags(enabled=False)
    peers = [Peer("torch nn.LSTMCell fp32, oneDNN off", "fp32", "torch",
                  _torch_runner(w.emb, w.cell, w.lin, H, True, off), w.fp32_bytes()),
             Peer("torch nn.LSTMCell fp32, oneDNN on", "fp32", "torch",
                  _torch_runner(w.emb, w.cell, w.lin, H, True), w.fp32_bytes())]
    lstm = nn.LSTM(w.X, H)
    with torch.no_grad():
        for a, b in (("weight_ih_l0", "weight_ih"), ("weight_hh_l0", "weight_hh"), ("bias_ih_l0", "bias_ih"),
                     ("bias_hh_l0", "bias_hh")):
            getattr(lstm, a).copy_(getattr(w.cell, b))
    qd = torch.ao.quantization.quantize_dynamic
    for core, types, label in ((w.cell, {nn.LSTMCell, nn.Linear}, "LSTMCell"), (lstm, {nn.LSTM, nn.Linear}, "LSTM")):
        q = qd(nn.ModuleList([core, w.lin]), types, dtype=torch.qint8)
        peers.append(Peer(f"torch dynamic int8 nn.{label}", "int8", "torch",
                          _torch_runner(w.emb, q[0], q[1], H, label == "LSTMCell"), w.int8_bytes(),
                          f"quantize_dynamic({{nn.{label}, nn.Linear}}, qint8)"))
    peers.append(Peer("torch nn.LSTM fp32 stepped (labelled)", "labelled", "torch",
                      _torch_runner(w.emb, lstm, w.lin, H, False), w.fp32_bytes(),
                      "one nn.LSTM call per token: oneDNN reorders the weights every call"))
    return peers


# -- ONNX Runtime --------------------------------------------------------------------------------
def _onnx_graph(w: Weights):
    """Gather (embedding) → LSTM op (one step, state in and out) → MatMul + Add (output layer)."""
    from onnx import TensorProto, helper, numpy_helper
    H, V = w.H, w.V

    def iofc(a):  # torch blocks i, f, g, o → ONNX i, o, f, c
        i, f, g, o = np.split(a, 4, axis=0)
        return np.concatenate([i, o, f, g], 0)

    b_ih, b_hh = w.cell.bias_ih.detach().numpy(), w.cell.bias_hh.detach().numpy()
    inits = {"embed": w.E, "W": iofc(w.W_ih)[None], "R": iofc(w.W_hh)[None],
             "B": np.concatenate([iofc(b_ih), iofc(b_hh)])[None].astype(np.float32),
             "W_out": np.ascontiguousarray(w.W_out.T), "b_out": w.b_out,
             "axes0": np.array([0], np.int64), "shape_h": np.array([1, H], np.int64)}
    nodes = [helper.make_node("Gather", ["embed", "tok"], ["x"], axis=0),
             helper.make_node("Unsqueeze", ["x", "axes0"], ["xs"]),
             helper.make_node("LSTM", ["xs", "W", "R", "B", "", "h0", "c0"], ["", "h1", "c1"], hidden_size=H),
             helper.make_node("Reshape", ["h1", "shape_h"], ["hv"]),
             helper.make_node("MatMul", ["hv", "W_out"], ["zv"]),
             helper.make_node("Add", ["zv", "b_out"], ["logits"])]
    f32 = TensorProto.FLOAT
    g = helper.make_graph(
        nodes, "lm_step",
        [helper.make_tensor_value_info("tok", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("h0", f32, [1, 1, H]), helper.make_tensor_value_info("c0", f32, [1, 1, H])],
        [helper.make_tensor_value_info("logits", f32, [1, V]),
         helper.make_tensor_value_info("h1", f32, [1, 1, H]), helper.make_tensor_value_info("c1", f32, [1, 1, H])],
        [numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m


def _ort_runner(path: str, H: int, V: int):
    """``InferenceSession.run`` once per token with numpy feeds, the state outputs fed back."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    st = {"h0": np.zeros((1, 1, H), np.float32), "c0": np.zeros((1, 1, H), np.float32)}
    toks = [np.array([t], np.int64) for t in range(V)]
    out = [None]

    def run(ids):
        for t in ids:
            y, st["h0"], st["c0"] = sess.run(None, {"tok": toks[t], "h0": st["h0"], "c0": st["c0"]})
            out[0] = y
        return out[0][0]
    return run


def ort_peers(w: Weights, tmp: str) -> tuple[list[Peer], str]:
    """ONNX Runtime's ``LSTM`` op in fp32 and through ``quantize_dynamic`` (int8 weights); returns
    ``([], note)`` when onnx/onnxruntime are not installed."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return [], f"ONNX Runtime rows skipped: onnx/onnxruntime not installed ({ORT_HINT})"
    fp, q8 = os.path.join(tmp, f"lstm{w.H}.onnx"), os.path.join(tmp, f"lstm{w.H}.int8.onnx")
    onnx.save(_onnx_graph(w), fp)
    quantize_dynamic(fp, q8, weight_type=QuantType.QInt8)
    run_fp, run_q = _ort_runner(fp, w.H, w.V), _ort_runner(q8, w.H, w.V)
    qm = onnx.load(q8)
    ops = sorted({n.op_type for n in qm.graph.node})
    nb = sum(onnx.numpy_helper.to_array(t).nbytes for t in qm.graph.initializer if not t.name.startswith("embed"))
    return [Peer("ONNX Runtime LSTM fp32", "fp32", "onnxruntime", run_fp, w.fp32_bytes()),
            Peer("ONNX Runtime LSTM int8", "int8", "onnxruntime", run_q, nb + w.X * 4,
                 "quantize_dynamic(QInt8); ops " + ", ".join(ops))], ""


def check_peers(peers: list[Peer], ids, atol: float = 1e-4) -> dict:
    """Run every peer from its zero state over the same ``ids``: fp32 peers must give the first
    peer's (numpy's) logits within ``atol`` (else AssertionError); returns each peer's max |logit
    difference| from it, the int8 peers' quantization error included."""
    ref, diffs = None, {}
    for p in peers:
        y = np.asarray(p.run(ids), np.float32)
        ref = y if ref is None else ref
        diffs[p.name] = float(np.abs(y - ref).max())
        if p.kind != "int8" and not np.allclose(y, ref, atol=atol, rtol=1e-3):
            raise AssertionError(f"{p.name} disagrees with {peers[0].name}: max |diff| {diffs[p.name]:.3g}")
    return diffs
