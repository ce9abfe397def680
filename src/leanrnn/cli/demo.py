"""The main job: a ternary, batch-normalized, state-pruned char-LM beside full precision.

Both models train with ``leanrnn.train.Trainer`` on the same characters of the embedded ``pystdlib``
corpus for the same number of steps, then are evaluated like ``leanrnn eval`` (eval mode:
deterministic weights, running batch-norm statistics) on held-out standard-library files. Prints bits
per character, next-character accuracy, the measured fraction of zero hidden states and the LSTM
weight memory. The runs are kept under ``runs/demo/`` for ``leanrnn export`` / ``hw`` / ``eval``.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..train import TrainConfig, Trainer, evaluate_split, load_data, load_run
from ..train.trainer import model_bits

# name -> (settings, learning rate). Batch norm tolerates a higher rate; each rate is the better of
# 3e-3, 6e-3 and 1e-2 for that model at 600 steps.
CONFIGS = {
    "full precision": ({"weights": "fp"}, 6e-3),
    "ternary + BN + 90% state pruning": ({"weights": "ternary", "batch_norm": True, "state_sparsity": 0.9}, 1e-2),
}


def run(steps: int = 600, hidden: int = 256, batch: int = 32, seq_len: int = 100, seed: int = 0,
        progress: bool = True, out: str | Path = "runs/demo") -> dict:
    out = Path(out)
    print(f"leanrnn demo: char-LM on the Python standard library, hidden {hidden}, "
          f"{steps} steps of {batch}x{seq_len} characters per model")
    results = {}
    for name, (kw, lr) in CONFIGS.items():
        run_dir = out / kw["weights"]
        shutil.rmtree(run_dir, ignore_errors=True)
        cfg = TrainConfig(task="char-lm", data="pystdlib", max_chars=steps * batch * seq_len + batch * 2,
                          hidden=hidden, embed=64, lr=lr, epochs=1, batch=batch, seq_len=seq_len,
                          steps_per_epoch=steps, checkpoint_every=max(steps, 1), eval_batch=64, seed=seed, **kw)
        t0 = time.perf_counter()
        Trainer(cfg, run_dir, progress=progress, log=lambda *a: None).run()
        train_s = time.perf_counter() - t0
        cfg, model, _ = load_run(run_dir)
        m = evaluate_split(cfg, model, load_data(cfg), "test")
        m.update(model_bits(model), train_s=train_s)
        results[name] = m
        print(f"  {name:<34} trained in {train_s:5.1f}s: test {m['bpc']:.3f} bits/char")
    print()
    print(f"{'model':<34}{'bits/char':>10}{'accuracy':>10}{'zero states':>13}{'LSTM weights':>15}")
    for name, m in results.items():
        print(f"{name:<34}{m['bpc']:>10.3f}{m['accuracy']:>10.1%}{m['state_sparsity']:>13.1%}"
              f"{m['lstm_weight_bits'] / 8 / 1024:>12.1f} KiB")
    print(f"\nruns kept in {out}/: try 'leanrnn export {out}/ternary -o model.lrnn' and 'leanrnn hw {out}/ternary'")
    return results
