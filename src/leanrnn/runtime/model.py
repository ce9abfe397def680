"""``Model``: load a ``.lrnn`` file and run it step by step, over sequences, or as a generator.

One compiled call (``kernels.step``) advances every stream of a state through all layers, the
pruning and the output layer; the state owns every buffer a step touches, so a step allocates
only the logits it returns. ``Model.step`` on a token id (an ``int``) with a state of batch 1 from
this model checks the id's range and the state's identity and calls the kernel; everything else
goes through the full checks.

Time index of batch norm: the folded per-step scales are indexed by ``State.t``, the number of steps
since the state was created (clamped to the last stored step). ``LeanLSTM`` counts steps from the
start of each forward call, so ``evaluate_lm`` starts every segment at ``t = 0`` exactly as
``leanrnn eval`` does. Models with one row of statistics (``bn_stats="shared"``, weight
normalization, none) do not depend on ``t``.

A bidirectional classifier runs on whole sequences only (``classify``): the reverse direction of
each layer reads the sequence from its end, so there is no state to step; ``step``, ``run`` and
``initial_state`` say so in one line.

The compiled kernels do no bounds checks, so every public method checks what it is given before any
kernel runs: shapes against the model (``(B,)`` token ids in ``[0, vocab)``, ``(B, n)`` finite
feature vectors, a state made for a model of this shape and batch), dtypes (integer ids, real
features) and argument ranges. A wrong type is a ``TypeError``, a wrong shape or value a
``ValueError``; each message is one line that names the expected shape.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..export.format import FIX, FLOAT32_MAX, FORMAT, VERSION, ModelFormatError, read_lrnn, validate
from ..export.spec import model_spec
from . import kernels
from .layout import direction_spec, pack, state_arrays

_NO_X = np.zeros((1, 0), np.float32)
_NO_SEQ_X = np.zeros((1, 1, 0), np.float32)
_NO_TOKS = np.zeros((0, 1), np.int64)


class State:
    """The recurrent state of ``batch`` streams: per layer ``h`` and ``c`` ``(B, H)`` float32 (views
    of buffers the kernels write in place), the step count ``t``, and zero-state counters."""

    def __init__(self, sig, S, N, views, record: bool):
        self._sig, self._S, self._N = sig, S, N
        self._h, self._c = views["h"], views["c"]
        self._logits, self._tokens = views["logits"], views["tokens"]
        self._y0 = self._logits[0]
        self._B = self._logits.shape[0]
        L = len(self._h)
        n = kernels.N_HEAD
        self._zeros = N[n + kernels.S_ZEROS: n + kernels.N_LAYER * L: kernels.N_LAYER]
        self._total = N[n + kernels.S_TOTAL: n + kernels.N_LAYER * L: kernels.N_LAYER]
        self.masks = [[] for _ in range(L)] if record else None  # per layer, (B, H) non-zero masks

    @property
    def h(self) -> tuple:
        return self._h

    @property
    def c(self) -> tuple:
        return self._c

    @property
    def batch(self) -> int:
        return self._B

    @property
    def zeros(self) -> np.ndarray:
        """Per layer, zero states produced so far (a read-only copy)."""
        return self._zeros.copy()

    @property
    def total(self) -> np.ndarray:
        """Per layer, states produced so far (a read-only copy)."""
        return self._total.copy()

    @property
    def t(self) -> int:
        return int(self._N[kernels.N_T])

    @t.setter
    def t(self, value) -> None:
        if not _is_int(value) or value < 0:
            raise ValueError(f"state.t must be an integer >= 0, got {value!r}")
        self._N[kernels.N_T] = value

    def sparsity(self) -> list[float]:
        """Per layer, the fraction of zero states produced so far, as plain floats (nan before any step)."""
        return [float(z) / float(n) if n else float("nan") for z, n in zip(self._zeros, self._total)]


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _count(v, name: str, lo: int) -> int:
    if not _is_int(v):
        raise TypeError(f"{name} must be an integer >= {lo}, got {type(v).__name__} {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
    return int(v)


def _array(x, what: str, expect: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except (ValueError, TypeError):  # ragged nested lists and the like
        raise ValueError(f"{what} must be {expect}; got a ragged or non-numeric {type(x).__name__}") from None


def _sum_abs(w: np.ndarray) -> np.ndarray:
    """Per column, a bound of the sum of ``|w|`` over the rows (float64: it must not overflow itself):
    the row count for binary/ternary codes (each -1, 0 or +1), no pass over them."""
    if w.dtype == np.int8:
        return np.full(w.shape[1], float(w.shape[0]))
    return np.abs(w).sum(0, dtype=np.float64)


def _bound(name: str, b: np.ndarray, what: str) -> np.ndarray:
    """``b``, the largest magnitudes of ``what``, or a ModelFormatError naming tensor ``name`` when
    they pass float32's range."""
    top = float(b.max(initial=0.0))
    if top > FLOAT32_MAX:
        raise ModelFormatError(f"tensor {name!r} holds weights so large that {what} reaches {top:.3g}, beyond "
                               f"float32's range ({FLOAT32_MAX:.3g}): the model cannot run; {FIX}")
    return b


def _check_range(spec) -> None:
    """Refuse a model whose sums can overflow float32 on inputs it accepts (finite weights of 3e38 pass the
    format's checks but turn every step into inf and NaN). Bounds, once per load: ``|h| <= 1``; a
    projection's ``|r| <= |s_hr| sum |W_hr|``; one-hot inputs 1, embedding rows their largest entry,
    features the trained range (``preprocess``) or 1."""
    inp, p = spec.input, spec.input.preprocess
    if p is not None and p.scale * p.raw_max > FLOAT32_MAX:
        raise ModelFormatError(f"header field preprocess: scale {p.scale:g} x raw_max {p.raw_max:g} is beyond "
                               f"float32's range, so no input is valid; {FIX}")
    x = {"onehot": 1.0, "dense": 1.0 if p is None else p.scale * p.raw_max * 1.001}.get(inp.kind)
    if x is None:
        x = float(np.abs(inp.embed).max(initial=0.0))
    for k in range(max(L.layer for L in spec.layers) + 1):
        outs = []
        for L in (L for L in spec.layers if L.layer == k):
            pre = f"l{k}_reverse" if L.reverse else f"l{k}"
            r = 1.0
            if L.w_hr is not None:
                r = float(_bound(f"{pre}.w_hr", _sum_abs(L.w_hr) * np.abs(L.s_hr), "the projection").max())
            ih = _bound(f"{pre}.w_ih", _sum_abs(L.w_ih) * x, "the product W_ih x")
            hh = _bound(f"{pre}.w_hh", _sum_abs(L.w_hh) * r, "the product W_hh h")
            _bound(f"{pre}.w_ih", ih * np.abs(L.s_ih).max(0) + hh * np.abs(L.s_hh).max(0) + np.abs(L.b).max(0),
                   "a gate's sum (with its scales and bias)")
            outs.append(r)
        x = max(outs)
    out = spec.output
    _bound("out.weight", _sum_abs(out.weight.T) * x + np.abs(out.bias), "a logit (with the bias)")


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
        self.spec = model_spec(header, tensors)
        _check_range(self.spec)
        self.task = header["task"]
        self.vocab = header.get("vocab")
        self.input = header["input"]
        self.layers = self.spec.layers
        self.embed = self.spec.input.embed
        self.out_w, self.out_b = self.spec.output.weight, self.spec.output.bias
        self.preprocessing = self.spec.input.preprocess
        self.bidirectional = self.spec.bidirectional
        if self.bidirectional:  # each direction runs alone over a whole sequence (classify)
            self._dirs = [(*pack(d), d) for d in (direction_spec(self.spec, L) for L in self.layers)]
            self._F = self._Q = self._M = None
        else:
            self._F, self._Q, self._M = pack(self.spec)
        self._sig = (tuple((L.hidden_size, L.output_size) for L in self.layers), self.spec.num_outputs,
                     self.input["size"])
        self._V = self.input.get("vocab") or 0
        self._index = None if self.vocab is None else {s: i for i, s in enumerate(self.vocab)}

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Read and validate a model file (ModelFormatError, and nothing else, on any defect, including
        weights whose sums overflow float32), the error naming ``path``."""
        header, tensors = read_lrnn(path)
        try:
            return cls(header, tensors, _validated=True)
        except ModelFormatError as e:
            raise ModelFormatError(f"{path}: {e}") from None

    @property
    def is_lm(self) -> bool:
        return self.input["kind"] != "dense"

    # -- checks -------------------------------------------------------------------------------------
    def _ids(self, a: np.ndarray, what: str) -> np.ndarray:
        """Integer dtype, every id in ``[0, vocab)``."""
        if a.dtype.kind not in "iu":
            raise TypeError(f"{what}: token ids must be integers, got dtype {a.dtype}; "
                            "convert with np.asarray(ids, dtype=np.int64)")
        V = self._V
        if a.size and (a.min() < 0 or a.max() >= V):
            bad = a[(a < 0) | (a >= V)].flat[0]
            raise ValueError(f"{what}: token ids must be in [0, {V}), got {bad}")
        return a.astype(np.int64, copy=False)

    def _features(self, a: np.ndarray, what: str) -> np.ndarray:
        """Real dtype, finite, as C-contiguous float32, within the trained range when it is known."""
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{what}: features must be real numbers, got dtype {a.dtype}")
        with np.errstate(over="ignore"):
            v = np.ascontiguousarray(a, dtype=np.float32)
        if not np.isfinite(v).all():
            raise ValueError(f"{what}: features must be finite (float32), got NaN, infinity or a value "
                             "beyond float32's range")
        p = self.preprocessing
        if p is not None and v.size and v.max() > p.scale * p.raw_max * 1.001:
            raise ValueError(f"{what}: features reach {v.max():g}, but this model was trained on {p.source} "
                             f"pixels scaled to [0, {p.scale * p.raw_max:g}] (raw 0..{p.raw_max:g} times "
                             f"{p.scale:g}{', in a permuted order' if p.order is not None else ''}); "
                             "pass model.preprocess(raw) instead")
        return v

    def preprocess(self, raw) -> np.ndarray:
        """Raw inputs ``(N, T, n)`` or ``(T, n)`` (e.g. pixels 0..16 of the 8x8 digits, in reading
        order) → what the model was trained on: ``raw[..., order, :] * scale`` (float32)."""
        p = self.preprocessing
        if p is None:
            raise ValueError("this model's file names no input preprocessing (it was not trained on a known "
                             "image source): feed it features as it was trained on them")
        a = _array(raw, "preprocess()", "raw inputs (N, T, n) or (T, n)")
        if a.ndim not in (2, 3) or a.dtype.kind not in "biuf":
            raise ValueError(f"preprocess() expects real raw inputs of shape (N, T, n) or (T, n), got "
                             f"{a.dtype}{a.shape}")
        if p.order is not None:
            if a.shape[-2] != len(p.order):
                raise ValueError(f"preprocess() expects {len(p.order)} steps (pixels) per sequence, got "
                                 f"{a.shape[-2]}")
            a = a[..., p.order, :]
        return (a.astype(np.float64) * p.scale).astype(np.float32)

    def _checked(self, x, what: str, expect: str, ndims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``x`` as an array of one of ``ndims`` dimensions, and its ids (in range) or its finite
        features of the model's width; anything else is one clear error naming ``expect``."""
        a = _array(x, what, expect)
        if a.ndim not in ndims or a.size == 0 or (not self.is_lm and a.shape[-1] != self.input["size"]):
            raise ValueError(f"{what} expects {expect}, got shape {a.shape}")
        return a, (self._ids(a, what) if self.is_lm else self._features(a, what))

    def _step_input(self, x, what: str) -> tuple[np.ndarray, bool]:
        """``(ids (B,) or features (B, n), unbatched)`` for one step's ``x``, or a clear error."""
        if self.is_lm:
            a, ids = self._checked(x, what, f"a token id (int) or a (B,) integer array of ids in [0, {self._V})",
                                   (0, 1))
            return ids.reshape(-1), a.ndim == 0
        n = self.input["size"]
        a, v = self._checked(x, what, f"features of shape ({n},) or (B, {n}) with B >= 1", (1, 2))
        return v.reshape(-1, n), a.ndim == 1

    def _inputs(self, x) -> np.ndarray:
        """One step's input vectors ``(B, n_in)`` float32 as layer 0 sees them (embedding rows,
        one-hot rows or features): for the fixed-point reference."""
        v, _ = self._step_input(x, "step()")
        if not self.is_lm:
            return v
        if self.input["kind"] == "embedding":
            return np.ascontiguousarray(self.embed[v])
        out = np.zeros((len(v), self.input["size"]), np.float32)
        out[np.arange(len(v)), v] = 1.0
        return out

    def _sequence(self, seq, what: str) -> tuple[np.ndarray, bool]:
        """A whole sequence: ``(T, B)`` ids or ``(T, B, n)`` float32 features, and whether unbatched."""
        if self.is_lm:
            a, ids = self._checked(seq, what, f"token ids of shape (T,) or (T, B) with T, B >= 1, in [0, {self._V})",
                                   (1, 2))
            return np.ascontiguousarray(ids.reshape(a.shape[0], -1)), a.ndim == 1
        n = self.input["size"]
        a, v = self._checked(seq, what, f"features of shape (T, {n}) or (T, B, {n}) with T, B >= 1", (2, 3))
        return v.reshape(a.shape[0], -1, n), a.ndim == 2

    def check_state(self, state, batch: int) -> None:
        """Raise unless ``state`` was made by ``initial_state(batch)`` of a model shaped like this one."""
        if not isinstance(state, State):
            raise TypeError(f"state must be a State from model.initial_state(), got {type(state).__name__}")
        if state._sig != self._sig:
            raise ValueError(f"this state belongs to a model of another shape; start from "
                             f"model.initial_state({batch})")
        if state.batch != batch:
            raise ValueError(f"the state holds {state.batch} streams, the input {batch}; start from "
                             f"model.initial_state({batch})")

    def _one_way(self) -> None:
        """Raise for a bidirectional model: it has no state that steps forward in time."""
        if self.bidirectional:
            raise ValueError("this classifier is bidirectional: its reverse direction reads each sequence from "
                             "the end, so it runs on whole sequences only; use classify(x) with x of shape "
                             f"(N, T, {self.input['size']})")

    def _state(self, state, batch: int) -> State:
        self._one_way()
        if state is None:
            return self.initial_state(batch)
        self.check_state(state, batch)
        return state

    # -- state --------------------------------------------------------------------------------------
    def initial_state(self, batch: int = 1, record: bool = False) -> State:
        """A zero state for ``batch`` independent streams; ``record=True`` keeps each step's
        non-zero state masks (``trace_zero_masks`` uses it)."""
        self._one_way()
        batch = _count(batch, "batch", 1)
        if not isinstance(record, (bool, np.bool_)):
            raise TypeError(f"record must be True or False, got {record!r}")
        return State(self._sig, *state_arrays(self.spec, batch), bool(record))

    # -- running ------------------------------------------------------------------------------------
    def step(self, x, state: State | None = None):
        """One time step: ``x`` is a token id (or ``(B,)`` ids) for LMs, a feature vector (or
        ``(B, n)``) for classifiers. Returns ``(logits, state)``; ``state`` is updated in place."""
        if type(x) is int and type(state) is State and state._sig is self._sig and state._B == 1 \
                and state.masks is None and 0 <= x < self._V:
            state._tokens[0] = x
            kernels.step(self._F, self._Q, self._M, state._S, state._N, _NO_X)
            return state._y0.copy(), state
        v, single = self._step_input(x, "step()")
        state = self._state(state, v.shape[0])
        self._advance(v, state)
        y = state._logits.copy()
        return (y[0] if single else y), state

    def _advance(self, v: np.ndarray, state: State) -> np.ndarray:
        """Unchecked: ``v`` is ``(B,)`` int64 ids or C-contiguous float32 ``(B, n_in)`` features that
        fit ``state``. Returns the top layer's new ``h (B, H)`` (a view into the state)."""
        if self.is_lm:
            state._tokens[:] = v
            kernels.step(self._F, self._Q, self._M, state._S, state._N, _NO_X)
        else:
            kernels.step(self._F, self._Q, self._M, state._S, state._N, v)
        if state.masks is not None:
            for k, h in enumerate(state.h):
                state.masks[k].append(h != 0)
        return state.h[-1]

    def _run(self, seq: np.ndarray, state: State) -> np.ndarray:
        """Unchecked: logits ``(T, B, V)`` of a checked ``(T, B)`` id or ``(T, B, n)`` feature sequence."""
        out = np.empty((seq.shape[0], state.batch, self.spec.num_outputs), np.float32)
        if state.masks is not None:
            for t in range(seq.shape[0]):
                self._advance(seq[t], state)
                out[t] = state._logits
        elif self.is_lm:
            kernels.steps(self._F, self._Q, self._M, state._S, state._N, seq, _NO_SEQ_X, out)
        else:
            kernels.steps(self._F, self._Q, self._M, state._S, state._N, _NO_TOKS, seq, out)
        return out

    def run(self, sequence, state: State | None = None):
        """Run a whole sequence (``(T,)`` ids, ``(T, B)`` ids, or ``(T, [B,] n)`` vectors):
        ``(outputs (T, [B,] num_outputs), state)``."""
        seq, single = self._sequence(sequence, "run()")
        state = self._state(state, seq.shape[1])
        out = self._run(seq, state)
        return (out[:, 0] if single else out), state

    def trace_zero_masks(self, sequence) -> tuple[list[np.ndarray], np.ndarray]:
        """Run one sequence from the zero state (``(T,)`` ids or ``(T, n)`` features) and return, per
        layer, the ``(T, H)`` non-zero masks of the state *fed into* each step (row 0: the zero
        initial state) and the ``(T, n_in)`` non-zero mask of layer 0's input: what an accelerator
        that skips zeros reads."""
        seq, single = self._sequence(sequence, "trace_zero_masks()")
        if not single:
            raise ValueError(f"trace_zero_masks() traces one sequence: (T,) ids or (T, {self.input['size']}) "
                             f"features, got shape {np.shape(sequence)}")
        state = self.initial_state(1, record=True)
        self._run(seq, state)
        fed = []
        for k, L in enumerate(self.layers):
            new = np.stack([m[0] for m in state.masks[k]])
            fed.append(np.vstack([np.zeros((1, L.output_size), bool), new[:-1]]))
        xs = np.concatenate([self._inputs(x[0]) if not self.is_lm else self._inputs(int(x[0])) for x in seq]) != 0
        return fed, xs

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
        x = np.ascontiguousarray(self._features(a, "classify()").transpose(1, 0, 2))
        if self.bidirectional:
            return self._classify_both_ways(x)[0]
        return self._run(x, self.initial_state(x.shape[1]))[-1]

    def _classify_both_ways(self, x: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Unchecked: logits ``(N, num_outputs)`` of checked features ``(T, N, n)`` through a
        bidirectional model, and each layer direction's fraction of zero states. Layer by layer,
        the forward direction runs over the sequence, then the reverse one over it backwards (its
        normalization step 0 at the last element); the layer's output is both directions' ``r``
        side by side per step, and the output layer reads the last layer's final states: the
        forward direction's after step ``T - 1``, the reverse direction's after step 0."""
        T, B = x.shape[:2]
        sparsity = []
        for k in range(len(self.layers) // 2):
            outs = []
            for d in (0, 1):
                F, Q, M, spec = self._dirs[2 * k + d]
                S, N, _ = state_arrays(spec, B)
                out = np.empty((T, B, spec.layers[0].output_size), np.float32)
                kernels.layer_steps(F, Q, M, S, N, x if d == 0 else np.ascontiguousarray(x[::-1]), out)
                outs.append(out if d == 0 else out[::-1])
                zeros, total = N[kernels.N_HEAD + kernels.S_ZEROS], N[kernels.N_HEAD + kernels.S_TOTAL]
                sparsity.append(float(zeros / max(total, 1)))
            x = np.ascontiguousarray(np.concatenate(outs, -1))
        R = outs[0].shape[-1]
        final = np.concatenate([x[-1, :, :R], x[0, :, R:]], -1)
        return final @ self.out_w.T + self.out_b, sparsity

    # -- text ---------------------------------------------------------------------------------------
    def _need_lm(self, what: str) -> None:
        if not self.is_lm:
            raise ValueError(f"{what} needs a language model; this one classifies: use classify() or run()")

    def encode(self, text: str, unknown: str | None = None) -> list[int]:
        """Token ids of ``text`` (characters, or whitespace-separated words). A token outside the
        vocabulary is an error unless ``unknown`` names the vocabulary token to put in its place."""
        self._need_lm("encode()")
        if not isinstance(text, str):
            raise TypeError(f"encode() needs a str, got {type(text).__name__}")
        if unknown is not None and (not isinstance(unknown, str) or unknown not in self._index):
            raise ValueError(f"unknown={unknown!r} is not a token of this model's vocabulary; name one of its "
                             f"{len(self.vocab)} tokens (e.g. {self.vocab[0]!r}) or leave it None to refuse")
        toks = list(text) if self.task == "char-lm" else text.split()
        idx = self._index
        if unknown is None:
            bad = [t for t in toks if t not in idx]
            if bad:
                raise ValueError(f"{len(bad)} token(s) of the text are not in the vocabulary, first {bad[0]!r}; "
                                 f"pass unknown=TOKEN (e.g. unknown={self.vocab[0]!r}) to replace them")
            return [idx[t] for t in toks]
        u = idx[unknown]
        return [idx.get(t, u) for t in toks]

    def decode(self, ids) -> str:
        """The text of token ids: characters joined, or words joined by spaces."""
        self._need_lm("decode()")
        a = _array(ids, "decode()", f"a (N,) sequence of integer token ids in [0, {self._V})")
        if a.ndim != 1:
            raise ValueError(f"decode() expects a (N,) sequence of token ids, got shape {a.shape}")
        ids = self._ids(a, "decode()")
        return ("" if self.task == "char-lm" else " ").join(self.vocab[i] for i in ids)

    def generate(self, prompt: str, n: int = 200, temperature: float = 1.0, seed: int | None = 0,
                 unknown: str | None = None) -> str:
        """Continue ``prompt`` by ``n`` tokens of a language model, sampled at ``temperature`` (``0``:
        greedy, the most likely token each step); ``unknown`` as in ``encode``."""
        self._need_lm("generate()")
        if not isinstance(prompt, str):
            raise TypeError(f"generate() needs a str prompt, got {type(prompt).__name__}")
        n = _count(n, "n", 0)
        if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, (int, float, np.number)):
            raise TypeError(f"temperature must be a number >= 0, got {type(temperature).__name__}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {temperature}")
        if seed is not None:
            seed = _count(seed, "seed", 0)
        rng = np.random.default_rng(seed)
        ids = self.encode(prompt, unknown) or [0]
        state = self.initial_state(1)
        y = self._run(np.asarray(ids, np.int64)[:, None], state)[-1, 0]
        out = []
        for _ in range(n):
            if not np.isfinite(y).all():
                raise ValueError("the model produced non-finite logits (its weights overflow float32); "
                                 "check the exported model's scales")
            if temperature == 0:
                nxt = int(y.argmax())
            else:
                p = np.exp((y.astype(np.float64) - y.max()) / temperature)
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(nxt)
            y = self.step(nxt, state)[0]
        return self.decode(out) if out else ""

    def evaluate_lm(self, ids, batch: int = 16, seq_len: int = 100) -> dict:
        """Bits per token, perplexity and accuracy over a whole id stream, with the protocol of
        ``leanrnn eval``: ``batch`` contiguous streams, segments of ``seq_len``, state carried."""
        self._need_lm("evaluate_lm()")
        batch, seq_len = _count(batch, "batch", 1), _count(seq_len, "seq_len", 1)
        expect = f"a (N,) stream of integer token ids in [0, {self._V}) with N >= 2 * batch"
        a = _array(ids, "evaluate_lm()", expect)
        if a.ndim != 1 or len(a) < 2 * batch:
            raise ValueError(f"evaluate_lm() expects {expect} (batch {batch}), got shape {a.shape}")
        ids = self._ids(a, "evaluate_lm()")
        n = len(ids) // batch
        streams = np.ascontiguousarray(ids[: n * batch].reshape(batch, n).T)
        state, nll, correct, count = self.initial_state(batch), 0.0, 0, 0
        for pos in range(0, n - 1, seq_len):
            state.t = 0  # LeanLSTM indexes batch-norm steps from each segment's start
            end = min(pos + seq_len, n - 1)
            y = self._run(streams[pos:end], state).astype(np.float64)
            tgt = streams[pos + 1: end + 1]
            m = y.max(-1, keepdims=True)
            lse = m[..., 0] + np.log(np.exp(y - m).sum(-1))
            nll += float((lse - np.take_along_axis(y, tgt[..., None], -1)[..., 0]).sum())
            correct += int((y.argmax(-1) == tgt).sum())
            count += tgt.size
        return {"bits_per_token": nll / count / math.log(2), "perplexity": math.exp(min(nll / count, 700)),
                "accuracy": correct / count, "tokens": count, "state_sparsity": state.sparsity()}
