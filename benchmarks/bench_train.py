"""Training throughput (forward + backward tokens/s) of LeanLSTM against torch.nn.LSTM.

Run: python benchmarks/bench_train.py [--hidden 256 1000] [--batch 64] [--seq 100] [--json out.json]
Prints one table per hidden size with the ratio of each configuration to nn.LSTM measured in the
same run, and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from leanrnn.nn import LeanLSTM

CONFIGS = {
    "nn.LSTM": None,
    "LeanLSTM fp": dict(weights="fp"),
    "ternary+BN": dict(weights="ternary", batch_norm=True),
    "ternary+BN+prune0.9": dict(weights="ternary", batch_norm=True, state_sparsity=0.9),
}


def tokens_per_s(model, x, repeats: int, warmup: int = 2) -> float:
    model.train()
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        out, _ = model(x)
        out.square().mean().backward()
        times.append(time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
    return x.shape[0] * x.shape[1] / statistics.median(times[warmup:])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 1000])
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", default="benchmarks/bench_train.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": args.threads, "batch": args.batch, "seq": args.seq, "input": args.input, "rows": []}
    for H in args.hidden:
        x = torch.randn(args.seq, args.batch, args.input)
        base = None
        print(f"\nhidden={H} batch={args.batch} seq={args.seq} input={args.input} threads={args.threads}")
        print(f"{'config':<24}{'tokens/s':>12}{'vs nn.LSTM':>12}")
        for name, kw in CONFIGS.items():
            model = torch.nn.LSTM(args.input, H) if kw is None else LeanLSTM(args.input, H, **kw)
            tps = tokens_per_s(model, x, args.repeats)
            base = tps if base is None else base
            print(f"{name:<24}{tps:>12.0f}{tps / base:>11.2f}x")
            result["rows"].append({"hidden": H, "config": name, "tokens_per_s": tps, "ratio": tps / base})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
