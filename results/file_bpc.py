"""Where a language model's test bits come from, file by file: a split's bits/char over the files that
match a pattern (linux: the pin-mux tables, ``*-pinfunc.h``) and over the rest.

    python results/file_bpc.py RUN [RUN ...] [--match -pinfunc.h] [--split test] [--json FILE]

linux's test split is 31 whole files; two pin-mux tables (``imxrt1050-pinfunc.h``,
``sama7g5-pinfunc.h``) are 42% of its characters, and on them models of equal validation bits can differ
by 0.5 bits/char, so they can decide a row's rank. The tokens are scored exactly as ``leanrnn eval``
scores them (the same streams, the state carried), then summed by file: the weighted mean of the two
columns is the run's test score.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from leanrnn.cli.checks import positive
from leanrnn.data import DataError
from leanrnn.train.checkpoint import CheckpointError
from leanrnn.train.lm import evaluate_lm
from leanrnn.train.trainer import load_data, load_run


def by_file(bits: torch.Tensor, files: list[tuple[str, int]], match: str) -> dict:
    """Bits per scored token over the files whose name contains ``match`` and over the others, with
    each group's scored tokens and file count."""
    sums = {True: [0.0, 0, 0], False: [0.0, 0, 0]}
    start = 0
    for name, n in files:
        b = bits[start: start + n]
        b = b[~torch.isnan(b)]
        g = sums[match in name]
        g[0] += b.sum().item()
        g[1] += b.numel()
        g[2] += 1
        start += n
    return {k: {"bpc": s / t if t else math.nan, "tokens": t, "files": f}
            for k, (s, t, f) in (("matching", sums[True]), ("rest", sums[False]))}


def score(model, corpus, cfg, split: str = "test", match: str = "-pinfunc.h") -> dict:
    """A run's ``split`` scored as ``leanrnn eval`` scores it, its bits summed over the files matching
    ``match`` and over the rest: ``{split, match, all, matching, rest}``."""
    r = evaluate_lm(model, getattr(corpus, split), batch=cfg.eval_batch, seq_len=cfg.seq_len, per_token=True)
    return {"split": split, "match": match, "all": r["bits_per_token"],
            **by_file(r["token_bits"], corpus.files[split], match)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="trained char-lm run directories (their best.pt)")
    ap.add_argument("--match", default="-pinfunc.h", help="the files of the first column: names containing "
                    "this (default -pinfunc.h, linux's pin-mux tables)")
    ap.add_argument("--split", choices=("test", "valid"), default="test", help="which split (default test)")
    ap.add_argument("--threads", type=positive(int), default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--json", type=Path, help="also write {run: {split, all, matching, rest}} here (merged "
                    "into the file's runs)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = json.loads(a.json.read_text()) if a.json and a.json.exists() else {}
    print(f"{a.split} bits/char | all | files matching {a.match!r} | the rest")
    for run in a.runs:
        try:
            cfg, model, _ = load_run(run)
            corpus = load_data(cfg)
        except (CheckpointError, DataError) as e:
            ap.error(str(e))
        if cfg.task != "char-lm" or not getattr(corpus, "files", None):
            ap.error(f"{run}: a char-lm run on a corpus split by whole files is needed (linux, shakespeare)")
        out[run] = g = score(model, corpus, cfg, a.split, a.match)
        m, rest = g["matching"], g["rest"]
        print(f"{run} | {g['all']:.4f} | {m['bpc']:.4f} ({m['files']} files, {m['tokens']:,} chars) | "
              f"{rest['bpc']:.4f} ({rest['files']} files, {rest['tokens']:,} chars)", flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
