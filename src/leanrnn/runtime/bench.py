"""Per-step latency of a model in the runtime (``leanrnn bench``): median over steps, batch 1."""
from __future__ import annotations

import time

import numpy as np

from .model import Model


def time_steps(fn, steps: int, warmup: int = 10) -> float:
    """Median seconds of ``fn(i)`` over ``steps`` calls after ``warmup``."""
    for i in range(warmup):
        fn(i)
    ts = np.empty(steps)
    for i in range(steps):
        t0 = time.perf_counter()
        fn(i)
        ts[i] = time.perf_counter() - t0
    return float(np.median(ts))


def bench_model(path: str, steps: int = 200) -> dict:
    m = Model.load(path)
    rng = np.random.default_rng(0)
    state = m.initial_state(1)
    if m.input["kind"] == "dense":
        xs = rng.random((steps + 10, 1, m.input["size"]), dtype=np.float32)
    else:
        xs = rng.integers(0, m.input["vocab"], (steps + 10, 1))
    med = time_steps(lambda i: m.step(xs[i], state), steps)
    sp = state.sparsity()
    print(f"{path}: {med * 1e6:.1f} us per step (batch 1, median of {steps}); "
          f"zero states {', '.join(f'{s:.1%}' for s in sp)}")
    return {"seconds_per_step": med, "state_sparsity": sp}
