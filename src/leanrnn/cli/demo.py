"""The main job: a ternary, normalized, state-pruned char-LM beside full precision, end to end.

Both models train with ``leanrnn.train.Trainer`` on the same characters of the embedded ``pystdlib``
corpus for the same number of steps; the full-precision model trains first, and the low-bit one
starts from its weights (``--init-from``: fine-tuning, so it has seen the text twice) and learns from
its outputs as well as from the text (``--teacher``: distillation). Both are evaluated
like ``leanrnn eval`` (eval mode: deterministic weights, the shipped pruning threshold) on held-out
standard-library files, exported to ``.lrnn`` files (the low-bit one compact: int8 embedding and
output layer) and run in the torch-free runtime. The table shows what the library is for in one
place: bits per character, the measured fraction of zero hidden states, the LSTM's weight memory,
the whole model file's size and the time of one step in the runtime (batch 1, one thread, on test
text). The runs and files are kept under ``runs/demo/`` for ``leanrnn export`` / ``hw`` / ``eval``.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ..train import TrainConfig, Trainer, evaluate_split, load_data, load_run, model_bits
from .checks import TRAINER_FILES

# name -> (run name, settings, learning rate); each rate is the better of 6e-3 and 1e-2 for that model at
# 600 steps. The low-bit model's recipe is the best of those measured at this budget that train in the
# main job's time (results/README.md, 3 seeds; 512 units with 90% zeros and per-step BN, distilled, is
# better, 2.377 against 2.417 bits/char, and trains four times as long): weight normalization (per-gate
# scales, no per-step tables in the file), the zero-state target from the first step, fine-tuned from and
# distilled from the full-precision run. "teacher" and
# "init_from" name another run of this table.
CONFIGS = {
    "full precision": ("fp", dict(weights="fp"), 6e-3),
    "ternary + WN + 90% state pruning, from fp, distilled": (
        "ternary", dict(weights="ternary", weight_norm=True, state_sparsity=0.9, teacher="fp", init_from="fp"),
        1e-2),
}


def _runtime(model_file: Path, ids, steps: int = 300) -> float:
    """Median seconds of ``Model.step`` on held-out text (torch-free runtime, batch 1)."""
    import numpy as np

    from ..runtime import Model
    m = Model.load(model_file)
    state = m.initial_state(1)
    toks = [int(t) for t in ids[: steps + 20]]
    for t in toks[:20]:
        m.step(t, state)
    ts = []
    for t in toks[20:]:
        t0 = time.perf_counter()
        m.step(t, state)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _config(short: str, out: Path, steps: int, hidden: int, seed: int, batch: int = 32,
            seq_len: int = 100) -> TrainConfig:
    """The settings of the demo's run ``short`` under ``out``."""
    _, kw, lr = next(c for c in CONFIGS.values() if c[0] == short)
    kw = {k: str(out / v) if k in ("teacher", "init_from") else v for k, v in kw.items()}
    return TrainConfig(task="char-lm", data="pystdlib", max_chars=steps * batch * seq_len + batch * 2,
                       hidden=hidden, embed=64, lr=lr, epochs=1, batch=batch, seq_len=seq_len,
                       steps_per_epoch=steps, checkpoint_every=max(steps, 1), eval_batch=64, seed=seed, **kw)


#: settings that differ between demo runs (flags, ``run``'s arguments); every other one is the demo's
_FREE = ("max_chars", "hidden", "steps_per_epoch", "checkpoint_every", "seed", "batch", "seq_len", "teacher",
         "init_from")


def _ours(settings, short: str) -> bool:
    """Whether ``settings`` (a run's config.json or a model file's header) are those of the demo's
    run ``short`` (for any steps, size and seed)."""
    want = _config(short, Path("."), 1, 1, 0).to_dict()
    if not isinstance(settings, dict):
        return False
    named = all(Path(str(settings.get(k) or "")).name == Path(want[k] or "").name for k in ("teacher", "init_from"))
    return named and all(settings.get(k) == v for k, v in want.items() if k not in _FREE)


def _our_run(d: Path, short: str) -> bool:
    if not d.is_dir():
        return False
    files = list(d.iterdir())
    if not files:
        return True
    if not all(f.is_file() and f.name in TRAINER_FILES for f in files):
        return False
    try:
        return _ours(json.loads((d / "config.json").read_text(encoding="utf-8")), short)
    except (OSError, ValueError):
        return False


def _our_model(f: Path, short: str) -> bool:
    from ..export import ModelFormatError
    from ..export.format import read_lrnn
    try:
        return _ours(read_lrnn(f)[0].get("config"), short)
    except (OSError, ModelFormatError):
        return False


def not_ours(out: str | Path) -> list[Path]:
    """What under ``out`` the demo would delete or overwrite that an earlier demo did not write."""
    out = Path(out)
    bad = []
    for short, _, _ in CONFIGS.values():
        d, f = out / short, out / f"{short}.lrnn"
        bad += [d] if d.exists() and not _our_run(d, short) else []
        bad += [f] if f.exists() and not _our_model(f, short) else []
    return bad


def is_results(path: Path) -> bool:
    """Whether ``path`` is a JSON that ``run`` wrote (``--json``), which a new run may replace."""
    try:
        r = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(r, dict) and {"steps", "hidden", "batch", "seq_len", "models"} <= set(r)


def run(steps: int = 600, hidden: int = 256, batch: int = 32, seq_len: int = 100, seed: int = 0,
        progress: bool = True, out: str | Path = "runs/demo", json_path: str | Path | None = None) -> dict:
    from ..export import export_run
    out = Path(out)
    print(f"leanrnn demo: char-LM on the Python standard library, hidden {hidden}, "
          f"{steps} steps of {batch}x{seq_len} characters per model")
    results = {}
    for name, (short, kw, lr) in CONFIGS.items():
        run_dir = out / short
        shutil.rmtree(run_dir, ignore_errors=True)
        kw = {k: str(out / v) if k in ("teacher", "init_from") else v for k, v in kw.items()}
        cfg = _config(short, out, steps, hidden, seed, batch, seq_len)
        t0 = time.perf_counter()
        Trainer(cfg, run_dir, progress=progress, log=lambda *a: None).run()
        train_s = time.perf_counter() - t0
        cfg, model, _ = load_run(run_dir)
        data = load_data(cfg)
        m = evaluate_split(cfg, model, data, "test")
        model_file = out / f"{short}.lrnn"
        export_run(run_dir, model_file, compact=short != "fp")  # the fp32 twin stays exact fp32
        m.update(model_bits(model), train_s=train_s, file_bytes=model_file.stat().st_size,
                 runtime_us_per_step=_runtime(model_file, data.test) * 1e6, settings=kw, lr=lr)
        results[name] = m
        print(f"  {name:<54} trained in {train_s:5.1f}s: test {m['bpc']:.3f} bits/char")
    print()
    print(markdown({"steps": steps, "hidden": hidden, "batch": batch, "seq_len": seq_len, "models": results}))
    if json_path:
        Path(json_path).write_text(json.dumps({"steps": steps, "hidden": hidden, "batch": batch, "seq_len": seq_len,
                                               "seed": seed, "models": results}, indent=1))
    print(f"\nruns and model files kept in {out}/: try 'leanrnn inspect {out}/ternary.lrnn' and "
          f"'leanrnn hw {out}/ternary'")
    return results


def markdown(r: dict) -> str:
    """The README's table, from ``run``'s results (or the JSON it wrote)."""
    lines = [f"{r['steps']} steps of {r['batch']}x{r['seq_len']} characters per model, hidden {r['hidden']}, "
             f"seed {r.get('seed', 0)}; test split of held-out standard-library files.", "",
             "| model | bits/char | next-char accuracy | zero states | LSTM weights | model file | "
             "runtime µs/step |", "|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        lines.append(f"| {name} | {m['bpc']:.3f} | {m['accuracy']:.1%} | {m['state_sparsity']:.1%} | "
                     f"{m['lstm_weight_bits'] / 8 / 1024:.0f} KiB | {m['file_bytes'] / 1024:.0f} KiB | "
                     f"{m['runtime_us_per_step']:.1f} |")
    return "\n".join(lines)
