"""Read bandwidth at a given footprint, and the cache level a working set fits in.

``ReadProbe(n)``: an ``n``-byte float32 array is summed over and over (warm: after the first pass
it sits in whichever level holds ``n`` bytes); bytes/s of the fastest timed pass, taking the faster
of numpy's sum and a vectorized numba sum. The fastest read is meant to make ``bytes / bandwidth``
a floor on a step's time; it is still one access pattern's rate, and a step that reads its bytes
faster can beat it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from numba import njit


@njit(cache=True, fastmath=True)
def _nb_sum(a):
    s = np.float32(0.0)
    for i in range(a.size):
        s += a[i]
    return s


class ReadProbe:
    """An ``nbytes`` float32 array and the fastest read of it seen so far (``best``, bytes/s);
    ``measure`` can be called between benchmark rounds so the probe sees the same noise."""

    def __init__(self, nbytes: int, min_time: float = 0.004):
        self.a = np.ones(max(nbytes // 4, 1024), np.float32)
        self.best = 0.0
        self.reps = {}
        for fn in (np.sum, _nb_sum):  # enough passes per trial that the timer's resolution does not matter
            fn(self.a)
            reps = 1
            while True:
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn(self.a)
                if time.perf_counter() - t0 >= min_time or reps >= 1 << 16:
                    break
                reps *= 4
            self.reps[fn] = reps
        self.measure(3)

    def measure(self, trials: int = 2) -> float:
        for fn, reps in self.reps.items():
            for _ in range(trials):
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn(self.a)
                self.best = max(self.best, self.a.nbytes * reps / (time.perf_counter() - t0))
        return self.best


def read_bandwidth(nbytes: int, trials: int = 5) -> float:
    """Bytes/s of reading an ``nbytes`` array that is already where it fits (cache or DRAM)."""
    return ReadProbe(nbytes).measure(trials)


def cache_sizes() -> dict:
    """Data/unified cache sizes of cpu0 in bytes, by level name (``L1``, ``L2``, ``L3``), from sysfs."""
    out = {}
    for d in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (d / "type").read_text().strip() == "Instruction":
                continue
            size = (d / "size").read_text().strip()
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
            out[f"L{(d / 'level').read_text().strip()}"] = int(size.rstrip("KMG")) * mult
        except (OSError, ValueError):
            continue
    return out


def level_of(nbytes: int, caches: dict) -> str:
    """The smallest cache level that holds ``nbytes``, else ``DRAM``."""
    for name, size in sorted(caches.items(), key=lambda kv: kv[1]):
        if nbytes <= size:
            return name
    return "DRAM"
