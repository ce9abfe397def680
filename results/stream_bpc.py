"""Where a language model's test bits come from: bits/char of each evaluation stream, with the state
carried across segments (as ``leanrnn eval`` scores) and with every segment started from zero.

    python results/stream_bpc.py RUN [--split valid] [--threads 1]

``leanrnn eval`` cuts a split into ``eval_batch`` contiguous streams. A split of whole files can hold
long repetitive stretches (linux's test split: pin-mux tables); on those a model that copies from its
context scores far below its mean, so two models of equal validation bits can differ on test by how
well they copy. The two columns separate that gain (carried minus zero-started) from the rest.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from leanrnn.cli.checks import positive
from leanrnn.data import DataError
from leanrnn.train.checkpoint import CheckpointError
from leanrnn.train.lm import evaluate_lm
from leanrnn.train.trainer import load_data, load_run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a trained char-lm run directory (its best.pt)")
    ap.add_argument("--split", choices=("test", "valid"), default="test", help="which split (default test)")
    ap.add_argument("--threads", type=positive(int), default=1, help="torch CPU threads (default 1)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        cfg, model, _ = load_run(a.run)
        if cfg.task != "char-lm":
            ap.error(f"{a.run} is a {cfg.task} run; give a char-lm run")
        ids = getattr(load_data(cfg), a.split)
    except (CheckpointError, DataError) as e:
        ap.error(str(e))
    kept = evaluate_lm(model, ids, batch=cfg.eval_batch, seq_len=cfg.seq_len)
    zero = evaluate_lm(model, ids, batch=cfg.eval_batch, seq_len=cfg.seq_len, carry=False)
    print(f"{a.run} {a.split}: {kept['bits_per_token']:.4f} bits/char with the state carried, "
          f"{zero['bits_per_token']:.4f} with each segment of {cfg.seq_len} started from zero")
    k, z = kept["stream_bits"], zero["stream_bits"]
    print(f"streams: {len(k)}; carried bits/char median {statistics.median(k):.2f}, "
          f"min {min(k):.2f}, max {max(k):.2f}; {sum(v < 1.5 for v in k)} streams under 1.5")
    print("stream  carried  zero-started  gain")
    for i in sorted(range(len(k)), key=k.__getitem__):
        print(f"{i:6d}  {k[i]:7.3f}  {z[i]:12.3f}  {z[i] - k[i]:5.3f}")


if __name__ == "__main__":
    main()
