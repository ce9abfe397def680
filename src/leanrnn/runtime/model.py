"""``Model``: load a ``.lrnn`` file and run it step by step, over sequences, or as a generator.

Time index of batch norm: the folded per-step scales are indexed by ``State.t``, the number of steps
since the state was created (clamped to the last stored step). ``LeanLSTM`` counts steps from the
start of each forward call, so ``evaluate_lm`` starts every segment at ``t = 0`` exactly as
``leanrnn eval`` does.

The compiled kernels do no bounds checks, so every public method checks what it is given before any
kernel runs: shapes against the model (``(B,)`` token ids in ``[0, vocab)``, ``(B, n)`` finite
feature vectors, a state made for this model and batch), dtypes (integer ids, real features) and
argument ranges. A wrong type is a ``TypeError``, a wrong shape or value a ``ValueError``; each
message is one line that names the expected shape. ``_inputs`` and ``_advance`` are the checked
and unchecked internals that ``leanrnn.hw`` and the benchmarks drive directly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..export.format import FORMAT, VERSION, read_lrnn, unpack_codes, validate
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

    @property
    def batch(self) -> int:
        return self.h[0].shape[0]

    def sparsity(self) -> list[float]:
        """Per layer, the fraction of zero states produced so far, as plain floats (nan before any step)."""
        return [float(z) / float(n) if n else float("nan") for z, n in zip(self.zeros, self.total)]


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _count(v, name: str, lo: int) -> int:
    if not _is_int(v):
        raise TypeError(f"{name} must be an integer >= {lo}, got {type(v).__name__} {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
    return int(v)


def _fix(batch: int) -> str:
    return f"start from model.initial_state({batch})"


def _array(x, what: str, expect: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except (ValueError, TypeError):  # ragged nested lists and the like
        raise ValueError(f"{what} must be {expect}; got a ragged or non-numeric {type(x).__name__}") from None


class _Layer:
    def __init__(self, k: int, spec: dict, t: dict):
        self.H = int(spec["hidden_size"])
        self.mode = spec["weights"]
        self.kind = _KIND[self.mode]
        G = 4 * self.H
        if self.mode == "fp":
            self.w_ih, self.w_hh = t[f"l{k}.w_ih"], t[f"l{k}.w_hh"]
        else:
            self.w_ih = unpack_codes(t[f"l{k}.w_ih"], G, self.mode)
            self.w_hh = unpack_codes(t[f"l{k}.w_hh"], G, self.mode)
        self.s_ih, self.s_hh, self.b = t[f"l{k}.s_ih"], t[f"l{k}.s_hh"], t[f"l{k}.b"]
        self.bn = bool(spec["batch_norm"])
        one = np.zeros((1, self.H), np.float32)
        self.s_c = t[f"l{k}.s_c"] if self.bn else one
        self.b_c = t[f"l{k}.b_c"] if self.bn else one
        self.thr = np.float32(spec["threshold"])
        self.steps = self.s_ih.shape[0]


class Model:
    def __init__(self, header: dict, tensors: dict, _validated: bool = False):
        """From a ``(header, tensors)`` pair (``read_lrnn``'s, or ``model_to_lrnn``'s, which lacks the
        file fields), validated here (ModelFormatError) unless it came from ``read_lrnn``;
        ``Model.load(path)`` is the usual way in."""
        if not _validated:
            header = {"format": FORMAT, "version": VERSION, "checksum": "", **header}
            validate(header, tensors)
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
    def load(cls, path: str | Path) -> Model:
        """Read and validate a model file (ModelFormatError, and nothing else, on any defect)."""
        return cls(*read_lrnn(path), _validated=True)

    @property
    def is_lm(self) -> bool:
        return self.input["kind"] != "dense"

    # -- checks -------------------------------------------------------------------------------------
    def _ids(self, a: np.ndarray, what: str) -> np.ndarray:
        """Integer dtype, every id in ``[0, vocab)``."""
        if a.dtype.kind not in "iu":
            raise TypeError(f"{what}: token ids must be integers, got dtype {a.dtype}; "
                            "convert with np.asarray(ids, dtype=np.int64)")
        V = self.input["vocab"]
        if a.size and (a.min() < 0 or a.max() >= V):
            bad = a[(a < 0) | (a >= V)].flat[0]
            raise ValueError(f"{what}: token ids must be in [0, {V}), got {bad}")
        return a.astype(np.int64, copy=False)

    def _features(self, a: np.ndarray, what: str) -> np.ndarray:
        """Real dtype, finite, as C-contiguous float32."""
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{what}: features must be real numbers, got dtype {a.dtype}")
        with np.errstate(over="ignore"):
            v = np.ascontiguousarray(a, dtype=np.float32)
        if not np.isfinite(v).all():
            raise ValueError(f"{what}: features must be finite (float32), got NaN, infinity or a value "
                             "beyond float32's range")
        return v

    def _vectors(self, ids: np.ndarray) -> np.ndarray:
        """Checked ``(B,)`` ids → ``(B, n_in)`` float32 input vectors."""
        if self.input["kind"] == "embedding":
            return np.ascontiguousarray(self.embed[ids])
        v = np.zeros((len(ids), self.input["size"]), np.float32)
        v[np.arange(len(ids)), ids] = 1.0
        return v

    def _inputs(self, x) -> np.ndarray:
        """One step's input as a checked ``(B, n_in)`` float32 array."""
        return self._step_input(x, "step()")[0]

    def _step_input(self, x, what: str) -> tuple[np.ndarray, bool]:
        """``(vectors (B, n_in), unbatched)`` for one step's ``x``, or a clear error."""
        if self.is_lm:
            if type(x) is int and 0 <= x < self.input["vocab"]:  # the common case, checked cheaply
                return self._vectors(np.array([x])), True
            expect = f"a token id (int) or a (B,) integer array of ids in [0, {self.input['vocab']})"
            a = _array(x, what, expect)
            if a.ndim > 1 or a.size == 0:
                raise ValueError(f"{what} expects {expect}, got shape {a.shape}")
            ids = self._ids(a, what)
            return self._vectors(ids.reshape(-1)), a.ndim == 0
        n = self.input["size"]
        expect = f"features of shape ({n},) or (B, {n}) with B >= 1"
        a = _array(x, what, expect)
        if a.ndim not in (1, 2) or a.shape[-1] != n or a.size == 0:
            raise ValueError(f"{what} expects {expect}, got shape {a.shape}")
        v = self._features(a, what)
        return v.reshape(-1, n), a.ndim == 1

    def _sequence(self, seq, what: str) -> tuple[np.ndarray, bool]:
        """A whole sequence: ``(T, B)`` ids or ``(T, B, n)`` float32 features, and whether unbatched."""
        if self.is_lm:
            expect = f"token ids of shape (T,) or (T, B) with T, B >= 1, in [0, {self.input['vocab']})"
            a = _array(seq, what, expect)
            if a.ndim not in (1, 2) or a.size == 0:
                raise ValueError(f"{what} expects {expect}, got shape {a.shape}")
            ids = self._ids(a, what)
            return ids.reshape(a.shape[0], -1), a.ndim == 1
        n = self.input["size"]
        expect = f"features of shape (T, {n}) or (T, B, {n}) with T, B >= 1"
        a = _array(seq, what, expect)
        if a.ndim not in (2, 3) or a.shape[-1] != n or a.size == 0:
            raise ValueError(f"{what} expects {expect}, got shape {a.shape}")
        v = self._features(a, what)
        return v.reshape(a.shape[0], -1, n), a.ndim == 2

    def check_state(self, state, batch: int) -> None:
        """Raise unless ``state`` was made by ``initial_state(batch)`` of a model shaped like this one."""
        if not isinstance(state, State):
            raise TypeError(f"state must be a State from model.initial_state(), got {type(state).__name__}")
        L = len(self.layers)
        for name in ("h", "c"):
            arrs = getattr(state, name)
            if not isinstance(arrs, list) or len(arrs) != L:
                raise ValueError(f"state.{name} must list {L} layer arrays; {_fix(batch)}")
            for k, (a, layer) in enumerate(zip(arrs, self.layers)):
                if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (batch, layer.H)
                        and a.flags.c_contiguous and a.flags.writeable):
                    got = f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                    raise ValueError(f"state.{name}[{k}] must be a writable C-contiguous float32 ({batch}, "
                                     f"{layer.H}) array for batch {batch}, got {got}; {_fix(batch)}")
        for name in ("zeros", "total"):
            a = getattr(state, name)
            if not (isinstance(a, np.ndarray) and a.dtype == np.int64 and a.shape == (L,)):
                raise ValueError(f"state.{name} must be an int64 ({L},) array; {_fix(batch)}")
        if not _is_int(state.t) or state.t < 0:
            raise ValueError(f"state.t must be an integer >= 0, got {state.t!r}; {_fix(batch)}")
        if state.masks is not None and (not isinstance(state.masks, list) or len(state.masks) != L):
            raise ValueError(f"state.masks must be None or a list of {L} lists; {_fix(batch)}")

    def _state(self, state, batch: int) -> State:
        if state is None:
            return self.initial_state(batch)
        self.check_state(state, batch)
        return state

    # -- state --------------------------------------------------------------------------------------
    def initial_state(self, batch: int = 1, record: bool = False) -> State:
        """A zero state; ``record=True`` keeps each step's non-zero state masks (for ``leanrnn.hw``)."""
        batch = _count(batch, "batch", 1)
        if not isinstance(record, (bool, np.bool_)):
            raise TypeError(f"record must be True or False, got {record!r}")
        z = [np.zeros((batch, L.H), np.float32) for L in self.layers]
        return State(z, [a.copy() for a in z], 0, np.zeros(len(self.layers), np.int64),
                     np.zeros(len(self.layers), np.int64), [[] for _ in self.layers] if record else None)

    # -- running ------------------------------------------------------------------------------------
    def step(self, x, state: State | None = None):
        """One time step: ``x`` is a token id (or ``(B,)`` ids) for LMs, a feature vector (or
        ``(B, n)``) for classifiers. Returns ``(logits, state)``; ``state`` is updated in place."""
        v, single = self._step_input(x, "step()")
        state = self._state(state, v.shape[0])
        y = self._logits(self._advance(v, state))
        return (y[0] if single else y), state

    def _logits(self, h_top: np.ndarray) -> np.ndarray:
        return h_top @ self.out_w.T + self.out_b

    def _advance(self, v: np.ndarray, state: State) -> np.ndarray:
        """Unchecked: ``v`` is C-contiguous float32 ``(B, n_in)`` and ``state`` fits batch ``B``."""
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
        seq, single = self._sequence(sequence, "run()")
        state = self._state(state, seq.shape[1])
        outs = []
        for x in seq:
            v = self._vectors(x) if self.is_lm else x
            outs.append(self._logits(self._advance(v, state)))
        out = np.stack(outs)
        return (out[:, 0] if single else out), state

    def classify(self, x) -> np.ndarray:
        """Logits ``(N, num_outputs)`` for a batch of sequences ``(N, T, n)`` (read from the last step)."""
        if self.is_lm:
            raise ValueError(f"classify() needs a sequence classifier; this model is a {self.task} language "
                             "model: use run(), generate() or evaluate_lm()")
        n = self.input["size"]
        expect = f"a batch of sequences of shape (N, T, {n}) with N, T >= 1"
        a = _array(x, "classify()", expect)
        if a.ndim != 3 or a.shape[-1] != n or a.size == 0:
            hint = "; add the batch axis with x[None]" if a.ndim == 2 and a.shape[-1] == n and a.size else ""
            raise ValueError(f"classify() expects {expect}, got shape {a.shape}{hint}")
        x = self._features(a, "classify()")
        state = self.initial_state(x.shape[0])
        for t in range(x.shape[1]):
            h = self._advance(np.ascontiguousarray(x[:, t]), state)
        return self._logits(h)

    def _need_lm(self, what: str) -> None:
        if not self.is_lm:
            raise ValueError(f"{what} needs a language model; this one classifies: use classify() or run()")

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (characters or whitespace-separated words); unknown tokens → ``<unk>``."""
        self._need_lm("encode()")
        if not isinstance(text, str):
            raise TypeError(f"encode() needs a str, got {type(text).__name__}")
        toks = list(text) if self.task == "char-lm" else text.split()
        unk = self._index.get("<unk>", 0)
        return [self._index.get(t, unk) for t in toks]

    def generate(self, prompt: str, n: int = 200, temperature: float = 1.0, seed: int | None = 0) -> str:
        """Continue ``prompt`` (a string) by ``n`` sampled tokens of a language model."""
        self._need_lm("generate()")
        if not isinstance(prompt, str):
            raise TypeError(f"generate() needs a str prompt, got {type(prompt).__name__}")
        n = _count(n, "n", 0)
        if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, (int, float, np.number)):
            raise TypeError(f"temperature must be a number > 0, got {type(temperature).__name__}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
        if seed is not None:
            seed = _count(seed, "seed", 0)
        rng = np.random.default_rng(seed)
        ids = self.encode(prompt) or [0]
        state = self.initial_state(1)
        for i in ids:
            y = self._logits(self._advance(self._vectors(np.array([i])), state))[0]
        out = []
        for _ in range(n):
            if not np.isfinite(y).all():
                raise ValueError("the model produced non-finite logits (its weights overflow float32); "
                                 "check the exported model's scales")
            p = np.exp((y.astype(np.float64) - y.max()) / temperature)
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(self.vocab[nxt])
            y = self._logits(self._advance(self._vectors(np.array([nxt])), state))[0]
        return ("" if self.task == "char-lm" else " ").join(out)

    def evaluate_lm(self, ids, batch: int = 16, seq_len: int = 100) -> dict:
        """Bits per token, perplexity and accuracy over a whole id stream, with the protocol of
        ``leanrnn eval``: ``batch`` contiguous streams, segments of ``seq_len``, state carried."""
        self._need_lm("evaluate_lm()")
        batch, seq_len = _count(batch, "batch", 1), _count(seq_len, "seq_len", 1)
        expect = f"a (N,) stream of integer token ids in [0, {self.input['vocab']}) with N >= 2 * batch"
        a = _array(ids, "evaluate_lm()", expect)
        if a.ndim != 1 or len(a) < 2 * batch:
            raise ValueError(f"evaluate_lm() expects {expect} (batch {batch}), got shape {a.shape}")
        ids = self._ids(a, "evaluate_lm()")
        n = len(ids) // batch
        streams = ids[: n * batch].reshape(batch, n).T
        state, nll, correct, count = self.initial_state(batch), 0.0, 0, 0
        for pos in range(0, n - 1, seq_len):
            state.t = 0  # LeanLSTM indexes batch-norm steps from each segment's start
            for t in range(pos, min(pos + seq_len, n - 1)):
                y = self._logits(self._advance(self._vectors(streams[t]), state)).astype(np.float64)
                tgt = streams[t + 1]
                m = y.max(1, keepdims=True)
                lse = (m[:, 0] + np.log(np.exp(y - m).sum(1)))
                nll += float((lse - y[np.arange(batch), tgt]).sum())
                correct += int((y.argmax(1) == tgt).sum())
                count += batch
        return {"bits_per_token": nll / count / math.log(2), "perplexity": math.exp(min(nll / count, 700)),
                "accuracy": correct / count, "tokens": count, "state_sparsity": state.sparsity()}
