"""The main job: a ternary, batch-normalized, state-pruned char-LM beside full precision.

Both models see the same characters of the embedded ``pystdlib`` corpus for the same number of
steps; both are evaluated in eval mode (deterministic weights, running batch-norm statistics) on the
held-out test files. Prints a table of bits per character, next-character accuracy, the measured
fraction of zero hidden states and the LSTM weight memory.
"""
from __future__ import annotations

import time

import torch

from ..data import PYSTDLIB_VOCAB, load_pystdlib
from ..tasks import LanguageModel
from ..train import batchify, evaluate_lm, train_lm

# name -> (LeanLSTM options, learning rate). Batch norm tolerates a higher rate; each rate is the
# better of 3e-3, 6e-3 and 1e-2 for that model at 600 steps (fp: 2.26, 2.23, - bits/char;
# ternary+BN+pruning: 2.59, 2.48, 2.43).
CONFIGS = {
    "full precision": (dict(weights="fp"), 6e-3),
    "ternary + BN + 90% state pruning": (dict(weights="ternary", batch_norm=True, state_sparsity=0.9), 1e-2),
}
_BITS = {"fp": 32, "binary": 1, "ternary": 2}


def weight_bits(model: LanguageModel) -> int:
    lstm = model.lstm
    n = sum(p.numel() for name, p in lstm.named_parameters() if name.startswith("weight_"))
    return n * _BITS[lstm.weights]


def run(steps: int = 600, hidden: int = 256, batch: int = 32, seq_len: int = 100,
        eval_chars: int = 60_000, seed: int = 0, progress: bool = True) -> dict:
    from tqdm.auto import tqdm

    train_ids = load_pystdlib("train", max_chars=steps * batch * seq_len + batch * 2)
    test_ids = load_pystdlib("test", max_chars=eval_chars)
    streams = batchify(train_ids, batch)
    V = len(PYSTDLIB_VOCAB)
    print(f"leanrnn demo: char-LM on the Python standard library ({len(train_ids):,} training chars, "
          f"{len(test_ids):,} test chars), hidden {hidden}, {steps} steps of {batch}x{seq_len}")
    results = {}
    for name, (kw, lr) in CONFIGS.items():
        torch.manual_seed(seed)
        model = LanguageModel(V, hidden, embed_size=64, **kw)
        t0 = time.perf_counter()
        bar = tqdm(total=steps, desc=f"{name:<34}", disable=not progress, leave=False)

        def on_step(step, loss):
            bar.update(1)
            if step % 10 == 0:
                sp = model.lstm.state_stats()[0]
                bar.set_postfix(loss=f"{loss:.3f}", sparsity=f"{0.0 if sp != sp else sp:.2f}")
        train_lm(model, streams, steps, seq_len=seq_len, lr=lr, on_step=on_step)
        bar.close()
        train_s = time.perf_counter() - t0
        model.lstm.reset_state_stats()
        metrics = evaluate_lm(model, test_ids)
        sp = model.lstm.state_stats()[0]
        metrics.update(state_sparsity=0.0 if sp != sp else sp, weight_bits=weight_bits(model), train_s=train_s)
        results[name] = metrics
        print(f"  {name:<34} trained in {train_s:5.1f}s: test {metrics['bits_per_token']:.3f} bits/char")
    print()
    print(f"{'model':<34}{'bits/char':>10}{'accuracy':>10}{'zero states':>13}{'LSTM weights':>15}")
    for name, m in results.items():
        print(f"{name:<34}{m['bits_per_token']:>10.3f}{m['accuracy']:>10.1%}{m['state_sparsity']:>13.1%}"
              f"{m['weight_bits'] / 8 / 1024:>12.1f} KiB")
    return results
