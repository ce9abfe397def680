"""Evaluate every run under runs/ and write results/README.md's tables, JSON and plots.

Run: python results/collect.py [--runs runs]   (evaluates runs that have no eval_test.json yet)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from leanrnn.cli import main as cli
from leanrnn.train import TrainConfig
from leanrnn.train.plots import plot_sparsity

RECIPES = {("char-lm", "pystdlib"): "recipes/char-pystdlib.yaml", ("classify", "digits"): "recipes/digits.yaml"}
TITLES = {("char-lm", "pystdlib"): "Character-level LM on the Python standard library (pystdlib)",
          ("classify", "digits"): "Sequential digits (scikit-learn 8x8, pixel by pixel, 64 steps)"}


def command(run_dir: Path, cfg: dict) -> str:
    """The run's own command line if it recorded one, else the recipe plus the settings that differ."""
    if (run_dir / "command.txt").exists():
        return (run_dir / "command.txt").read_text().strip()
    recipe = RECIPES.get((cfg["task"], cfg["data"]))
    base = TrainConfig().to_dict()
    base.update(yaml.safe_load(Path(recipe).read_text()) if recipe else {})
    parts = ["leanrnn train"] + ([f"--recipe {recipe}"] if recipe else [])
    for k, v in cfg.items():
        if k in ("extra", "note", "threads") or base.get(k) == v:
            continue
        flag = "--" + k.replace("_", "-")
        parts.append(flag if v is True else (f"--no-{k.replace('_', '-')}" if v is False else f"{flag} {v}"))
    return " ".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs")
    args = ap.parse_args()
    groups: dict = {}
    for cfg_path in sorted(Path(args.runs).glob("*/*/config.json")):
        if cfg_path.parent.parent.name == "demo":  # the main job's short runs
            continue
        d = cfg_path.parent
        cfg = json.loads(cfg_path.read_text())
        done = (d / "metrics.jsonl").exists() and len((d / "metrics.jsonl").read_text().splitlines()) >= cfg["epochs"]
        if not done:
            print(f"skipping {d}: not finished")
            continue
        if not (d / "eval_test.json").exists() or (d / "eval_test.json").stat().st_mtime < (d / "best.pt").stat().st_mtime:
            cli(["eval", str(d)])
        m = json.loads((d / "eval_test.json").read_text())
        rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x.strip()]
        groups.setdefault((cfg["task"], cfg["data"]), []).append((f"{d.parent.name}/{d.name}", cfg, m, rows, d))
    out = {}
    for key, runs in groups.items():
        metric = runs[0][2]["metric_name"]
        runs.sort(key=lambda r: (r[1]["weights"] != "fp", r[1]["weights"], r[1]["state_sparsity"], r[1]["batch_norm"]))
        plot_sparsity([(n, m["state_sparsity"], m[metric]) for n, _, m, _, _ in runs], metric,
                      f"results/{key[0]}-{key[1]}-sparsity.png")
        out["/".join(key)] = [{"run": n, "command": command(d, c), "epochs": len(rows), **m} for n, c, m, rows, d in runs]
        print(f"\n### {TITLES.get(key, key)}\n")
        print(f"| run | weights | BN | target zeros | test {metric} | measured zero states | LSTM weights | "
              "weight bits vs fp32 | command |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n, c, m, rows, d in runs:
            print(f"| {n} | {c['weights']} | {'yes' if c['batch_norm'] else 'no'} | {c['state_sparsity']:.0%} | "
                  f"{m[metric]:.4f} | {m['state_sparsity']:.1%} | {m['lstm_weight_bits'] / 8 / 1024:.0f} KiB | "
                  f"1/{m['lstm_weight_bits_fp32'] / m['lstm_weight_bits']:.0f} | `{command(d, c)}` |")
    Path("results/results.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
