"""How a pruned run's zeros fall on its units: is 90% pruning a narrower model or a sparse one in time?

    python results/live_units.py RUN [RUN ...] [--segments 10]

Runs each model in eval mode (the shipped threshold) over the first ``segments`` x 100 characters of
32 streams of its validation split and prints, per run, how many units are live (non-zero) in more
than a given fraction of the state vectors. Dead units would mean a global threshold makes the model
narrower, and per-unit thresholds could bring them back; units each live a small part of the time
mean the zeros are already spread over the whole width.
"""
from __future__ import annotations

import argparse

import torch

from leanrnn.cli.checks import positive
from leanrnn.train.lm import batchify
from leanrnn.train.trainer import load_data, load_run

LEVELS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5)


def live_fractions(run: str, segments: int) -> torch.Tensor:
    """Per unit, the fraction of (step, stream) state vectors in which it is non-zero."""
    cfg, model, _ = load_run(run)
    live = []
    model.lstm.register_forward_hook(lambda m, i, o: live.append((o[0] != 0).reshape(-1, o[0].shape[-1])))
    streams = batchify(load_data(cfg).valid, 32)
    n = streams.shape[0] - 1
    if n < 1:
        raise ValueError(f"its validation split holds {streams.numel()} characters, too few for 32 streams")
    seg, state = min(100, n), None  # a short split (a small --max-chars) in one shorter segment
    with torch.no_grad():
        for k in range(min(segments, n // seg)):
            _, state = model(streams[k * seg:(k + 1) * seg], state)
    return torch.cat(live).float().mean(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories of pruned char-LM runs")
    ap.add_argument("--segments", type=positive(int), default=10,
                    help="segments of 100 characters per stream (default 10)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        try:
            f = live_fractions(run, args.segments)
        except Exception as e:  # a missing or foreign run, absent data: one line, exit 2
            ap.error(f"{run}: {e}")
        shares = ", ".join(f"> {t:.0%}: {int((f > t).sum())}" for t in LEVELS)
        print(f"{run}: mean live {float(f.mean()):.3f}; units of {f.numel()} live in {shares} of the states")


if __name__ == "__main__":
    main()
