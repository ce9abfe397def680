"""``Model``: load a ``.lrnn`` file and run it step by step, over sequences, or as a generator.

Time index of batch norm: the folded per-step scales are indexed by ``State.t``, the number of steps
since the state was created (clamped to the last stored step). ``LeanLSTM`` counts steps from the
start of each forward call, so ``evaluate_lm`` starts every segment at ``t = 0`` exactly as
``leanrnn eval`` does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..export.format import read_lrnn, unpack_codes
from . import kernels

_KIND = {"fp": kernels.FP, "binary": kernels.BINARY, "ternary": kernels.TERNARY}


@dataclass
class State:
    h: list            # per layer, (B, H) float32
    c: list
    t: int = 0
    zeros: np.ndarray = field(default=None)   # per layer: zero states fed back so far
    total: np.ndarray = field(default=None)   # per layer: states fed back so far
    masks: list | None = None                 # per layer, a list of (B, H) non-zero masks, if recording

    def sparsity(self) -> list[float]:
        return [float(z) / t if t else float("nan") for z, t in zip(self.zeros, self.total)]


class _Layer:
    def __init__(self, k: int, spec: dict, t: dict):
        self.H = int(spec["hidden_size"])
        self.mode = spec["weights"]
        self.kind = _KIND[self.mode]
        G = 4 * self.H
        if self.mode == "fp":
            self.w_ih, self.w_hh = t[f"l{k}.w_ih"], t[f"l{k}.w_hh"]
        else:
            self.w_ih = np.ascontiguousarray(unpack_codes(t[f"l{k}.w_ih"], G, self.mode))
            self.w_hh = np.ascontiguousarray(unpack_codes(t[f"l{k}.w_hh"], G, self.mode))
        self.s_ih, self.s_hh, self.b = t[f"l{k}.s_ih"], t[f"l{k}.s_hh"], t[f"l{k}.b"]
        self.bn = bool(spec["batch_norm"])
        one = np.zeros((1, self.H), np.float32)
        self.s_c = t[f"l{k}.s_c"] if self.bn else one
        self.b_c = t[f"l{k}.b_c"] if self.bn else one
        self.thr = np.float32(spec["threshold"])
        self.steps = self.s_ih.shape[0]


class Model:
    def __init__(self, header: dict, tensors: dict):
        self.header = header
        self._tensors = tensors
        self.task = header["task"]
        self.vocab = header.get("vocab")
        self.input = header["input"]
        self.layers = [_Layer(k, spec, tensors) for k, spec in enumerate(header["layers"])]
        self.embed = tensors.get("embed.weight")
        self.out_w = tensors["out.weight"]
        self.out_b = tensors["out.bias"]
        self._index = None if self.vocab is None else {s: i for i, s in enumerate(self.vocab)}

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        """Read and validate a model file (ModelFormatError on any defect)."""
        return cls(*read_lrnn(path))

    # -- state and inputs ---------------------------------------------------------------------------
    def initial_state(self, batch: int = 1, record: bool = False) -> State:
        """A zero state; ``record=True`` keeps each step's non-zero state masks (for ``leanrnn.hw``)."""
        z = [np.zeros((batch, L.H), np.float32) for L in self.layers]
        return State(z, [a.copy() for a in z], 0, np.zeros(len(self.layers), np.int64),
                     np.zeros(len(self.layers), np.int64), [[] for _ in self.layers] if record else None)

    def _inputs(self, x) -> np.ndarray:
        """One step's input as ``(B, n_in)`` float32: token ids for LMs, vectors for classifiers."""
        kind = self.input["kind"]
        if kind == "dense":
            v = np.asarray(x, dtype=np.float32)
            v = v.reshape(1, -1) if v.ndim == 1 else v
            if v.ndim != 2 or v.shape[1] != self.input["size"]:
                raise ValueError(f"input must have {self.input['size']} features per step, got shape {np.shape(x)}")
            return np.ascontiguousarray(v)
        ids = np.atleast_1d(np.asarray(x, dtype=np.int64))
        if ids.ndim != 1 or (ids < 0).any() or (ids >= self.input["vocab"]).any():
            raise ValueError(f"token ids must be in [0, {self.input['vocab']}), got {x!r}")
        if kind == "embedding":
            return self.embed[ids]
        v = np.zeros((len(ids), self.input["size"]), np.float32)
        v[np.arange(len(ids)), ids] = 1.0
        return v

    # -- running ------------------------------------------------------------------------------------
    def step(self, x, state: State | None = None):
        """One time step: ``x`` is a token id (or ``(B,)`` ids) for LMs, a feature vector (or
        ``(B, n)``) for classifiers. Returns ``(logits, state)``; ``state`` is updated in place."""
        v = self._inputs(x)
        if state is None:
            state = self.initial_state(v.shape[0])
        elif state.h[0].shape[0] != v.shape[0]:
            raise ValueError(f"the state holds batch {state.h[0].shape[0]}, the input batch {v.shape[0]}")
        h_top = self._advance(v, state)
        y = h_top @ self.out_w.T + self.out_b
        return (y[0] if np.ndim(x) == (0 if self.input["kind"] != "dense" else 1) else y), state

    def _advance(self, v: np.ndarray, state: State) -> np.ndarray:
        for k, L in enumerate(self.layers):
            ts = min(state.t, L.steps - 1)
            B = v.shape[0]
            h_new = np.empty((B, L.H), np.float32)
            state.zeros[k] += kernels.layer_step(L.kind, L.w_ih, L.w_hh, v, state.h[k], state.c[k], L.s_ih[ts],
                                                 L.s_hh[ts], L.b[ts], L.bn, L.s_c[ts], L.b_c[ts], L.thr, h_new)
            state.total[k] += B * L.H
            if state.masks is not None:
                state.masks[k].append(h_new != 0)
            state.h[k] = h_new
            v = h_new
        state.t += 1
        return v

    def run(self, sequence, state: State | None = None):
        """Run a whole sequence (``(T,)`` ids, ``(T, B)`` ids, or ``(T, [B,] n)`` vectors):
        ``(outputs (T, [B,] num_outputs), state)``."""
        outs = []
        for x in sequence:
            y, state = self.step(x, state)
            outs.append(y)
        return np.stack(outs), state

    def classify(self, x: np.ndarray) -> np.ndarray:
        """Logits for a batch of sequences ``(N, T, n)`` (read from the last step)."""
        x = np.asarray(x, dtype=np.float32)
        state = self.initial_state(x.shape[0])
        for t in range(x.shape[1]):
            h = self._advance(np.ascontiguousarray(x[:, t]), state)
        return h @ self.out_w.T + self.out_b

    def encode(self, text) -> list[int]:
        if self._index is None:
            raise ValueError("this model has no vocabulary")
        toks = list(text) if self.task == "char-lm" else text.split()
        unk = self._index.get("<unk>", 0)
        return [self._index.get(t, unk) for t in toks]

    def generate(self, prompt, n: int = 200, temperature: float = 1.0, seed: int = 0) -> str:
        """Continue ``prompt`` (a string) by ``n`` sampled tokens of a language model."""
        if self.task == "classify":
            raise ValueError("generate() needs a language model; this one classifies")
        if not temperature > 0:
            raise ValueError("temperature must be > 0")
        rng = np.random.default_rng(seed)
        ids = self.encode(prompt) or [0]
        state = None
        for i in ids:
            y, state = self.step(i, state)
        out = []
        for _ in range(n):
            p = np.exp((y - y.max()) / temperature)
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(self.vocab[nxt])
            y, state = self.step(nxt, state)
        return ("" if self.task == "char-lm" else " ").join(out)

    def evaluate_lm(self, ids, batch: int = 16, seq_len: int = 100) -> dict:
        """Bits per token, perplexity and accuracy over a whole id stream, with the protocol of
        ``leanrnn eval``: ``batch`` contiguous streams, segments of ``seq_len``, state carried."""
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids) // batch
        streams = ids[: n * batch].reshape(batch, n).T
        state, nll, correct, count = self.initial_state(batch), 0.0, 0, 0
        for pos in range(0, n - 1, seq_len):
            state.t = 0  # LeanLSTM indexes batch-norm steps from each segment's start
            for t in range(pos, min(pos + seq_len, n - 1)):
                y, state = self.step(streams[t], state)
                y = y.astype(np.float64)
                tgt = streams[t + 1]
                m = y.max(1, keepdims=True)
                lse = (m[:, 0] + np.log(np.exp(y - m).sum(1)))
                nll += float((lse - y[np.arange(batch), tgt]).sum())
                correct += int((y.argmax(1) == tgt).sum())
                count += batch
        return {"bits_per_token": nll / count / math.log(2), "perplexity": math.exp(min(nll / count, 700)),
                "accuracy": correct / count, "tokens": count, "state_sparsity": state.sparsity()}
