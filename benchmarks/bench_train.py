"""Training throughput (forward + backward tokens/s) of LeanLSTM against torch.nn.LSTM.

Run: python benchmarks/bench_train.py [--hidden 256 1000] [--batch 64] [--seq 100] [--rounds 7] [--json out.json]
     python benchmarks/bench_train.py --markdown [--json in.json]   (print README's table from the JSON)

Every configuration of one hidden size is built first; then each round times one training
iteration of each in turn, so that a change in the machine's load hits all of them alike, and the
reported figure is the median over rounds. Ratios are against nn.LSTM's median from the same run.
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
    "ternary+WN+prune0.9": dict(weights="ternary", weight_norm=True, state_sparsity=0.9),
}
HEADERS = {"LeanLSTM fp": "LeanLSTM fp", "ternary+BN": "ternary + BN",
           "ternary+BN+prune0.9": "ternary + BN + 90% pruning", "ternary+WN+prune0.9": "ternary + WN + 90% pruning"}


def train_step(model, x) -> float:
    """Seconds for one forward and backward pass."""
    t0 = time.perf_counter()
    out, _ = model(x)
    out.square().mean().backward()
    dt = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return dt


def measure(models: dict, x, rounds: int, warmup: int = 2) -> dict:
    """Median tokens/s of each model over ``rounds`` interleaved rounds."""
    for m in models.values():
        m.train()
        for _ in range(warmup):
            train_step(m, x)
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, m in models.items():
            times[name].append(train_step(m, x))
    return {name: x.shape[0] * x.shape[1] / statistics.median(t) for name, t in times.items()}


def markdown(result: dict) -> str:
    """README's table: nn.LSTM's tokens/s and each configuration's ratio to it, one row per hidden size."""
    names = [n for n in CONFIGS if n != "nn.LSTM"]
    lines = [f"Forward + backward, batch {result['batch']} x {result['seq']} steps, input {result['input']}, "
             f"{result['threads']} thread(s), torch {result['torch']}, median of {result['rounds']} interleaved "
             f"rounds; {result['machine']}.", "",
             "| hidden | nn.LSTM tokens/s | " + " | ".join(HEADERS[n] for n in names) + " |",
             "|---" * (len(names) + 2) + "|"]
    for H in sorted({r["hidden"] for r in result["rows"]}):
        rows = {r["config"]: r for r in result["rows"] if r["hidden"] == H}
        cells = [f"{rows['nn.LSTM']['tokens_per_s']:,.0f}"]
        cells += [f"{rows[n]['ratio']:.2f}x" if n in rows else "" for n in names]
        lines.append(f"| {H} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 1000], help="hidden sizes (default 256 1000)")
    ap.add_argument("--input", type=int, default=64, help="input features per step (default 64)")
    ap.add_argument("--batch", type=int, default=64, help="sequences per training step (default 64)")
    ap.add_argument("--seq", type=int, default=100, help="time steps per sequence (default 100)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians over them (default 7)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch CPU threads (default: torch's choice, all cores)")
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                    help="which configurations to time (default all)")
    ap.add_argument("--json", default="benchmarks/bench_train.json", help="results file to write (or read with "
                    "--markdown)")
    ap.add_argument("--markdown", action="store_true", help="print the README table from --json and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        with open(args.json) as f:
            result = json.load(f)
        print(markdown(result))
        return result
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    names = ["nn.LSTM"] + [n for n in args.configs if n != "nn.LSTM"]
    result = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": args.threads, "batch": args.batch, "seq": args.seq, "input": args.input,
              "rounds": args.rounds, "statistic": "median over interleaved rounds", "rows": []}
    for H in args.hidden:
        x = torch.randn(args.seq, args.batch, args.input)
        models = {n: torch.nn.LSTM(args.input, H) if CONFIGS[n] is None else LeanLSTM(args.input, H, **CONFIGS[n])
                  for n in names}
        tps = measure(models, x, args.rounds)
        print(f"\nhidden={H} batch={args.batch} seq={args.seq} input={args.input} threads={args.threads}")
        print(f"{'config':<24}{'tokens/s':>12}{'vs nn.LSTM':>12}")
        for n in names:
            ratio = tps[n] / tps["nn.LSTM"]
            print(f"{n:<24}{tps[n]:>12.0f}{ratio:>11.2f}x")
            result["rows"].append({"hidden": H, "config": n, "tokens_per_s": tps[n], "ratio": ratio})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
