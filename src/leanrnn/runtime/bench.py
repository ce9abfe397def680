"""Per-step latency of a model in the runtime (``leanrnn bench``): median over steps, batch 1.

Each timed step is ``Model.step`` on a token id (a language model) or a feature vector, the state
fed back: the call a user makes. A bidirectional classifier has no step; its time per step is that
of ``Model.classify`` on one sequence of ``steps`` steps (both directions) divided by ``steps``."""
from __future__ import annotations

import time

import numpy as np

from .model import Model

#: distinct inputs a timed step draws from: memory that does not grow with ``steps``
POOL = 4096


def time_steps(fn, steps: int, warmup: int = 10) -> float:
    """Median seconds of ``fn(i)`` over ``steps`` calls after ``warmup``."""
    for name, v, lo in (("steps", steps, 1), ("warmup", warmup, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    for i in range(warmup):
        fn(i)
    ts = np.empty(steps)
    for i in range(steps):
        t0 = time.perf_counter()
        fn(i)
        ts[i] = time.perf_counter() - t0
    return float(np.median(ts))


def bench_model(path: str, steps: int = 200) -> dict:
    """Load ``path`` (ModelFormatError if it is not a valid model) and time ``steps`` steps on random inputs."""
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    m = Model.load(path)
    rng = np.random.default_rng(0)
    n = steps + 10 if m.bidirectional else min(steps + 10, POOL)  # a step cycles through a bounded pool
    if m.is_lm:
        xs = [int(t) for t in rng.integers(0, m.input["vocab"], n)]
    else:
        p = m.preprocessing
        top = 1.0 if p is None else p.scale * p.raw_max
        xs = list(rng.random((n, m.input["size"]), dtype=np.float32) * np.float32(top))
    if m.bidirectional:
        seq = np.ascontiguousarray(np.stack(xs[:steps])[:, None])   # (T, 1, n)
        med = time_steps(lambda i: m._classify_both_ways(seq), 5, warmup=1) / steps
        sp = m._classify_both_ways(seq)[1]
        print(f"{path}: {med * 1e6:.1f} us per step (bidirectional: whole sequences of {steps} steps, batch 1); "
              f"zero states {', '.join(f'{s:.1%}' for s in sp)}")  # per layer direction
        return {"seconds_per_step": med, "state_sparsity": sp}
    state = m.initial_state(1)
    med = time_steps(lambda i: m.step(xs[i % n], state), steps)
    sp = state.sparsity()
    print(f"{path}: {med * 1e6:.1f} us per step (batch 1, median of {steps}); "
          f"zero states {', '.join(f'{s:.1%}' for s in sp)}")  # per layer, plain floats
    return {"seconds_per_step": med, "state_sparsity": sp}
