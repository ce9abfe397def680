"""PNG plots of runs: learning curves, and the metric against state sparsity across runs."""
from __future__ import annotations

import json
from pathlib import Path

#: the title in the metadata of every ``plot_points`` image: the mark that lets a new plot replace it
POINTS_TITLE = "leanrnn plot: test metric against state sparsity"


def read_metrics(run_dir: str | Path) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(run_dir: str | Path) -> Path | None:
    """``curves.png``: the training loss every ``--log-every`` steps (``steps.jsonl``) with each epoch's
    mean, and the validation metric per epoch against the same step axis, so a short run still
    draws a curve."""
    rows = read_metrics(run_dir)
    if not rows:
        return None
    p = Path(run_dir) / "steps.jsonl"
    steps = [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []
    plt = _plt()
    metric = next(k[6:] for k in rows[0] if k.startswith("valid_") and k != "valid_state_sparsity")
    at = [r["step"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    if steps:
        ax[0].plot([r["step"] for r in steps], [r["train_loss"] for r in steps], lw=0.8, alpha=0.6, label="steps")
    ax[0].plot(at, [r["train_loss"] for r in rows], marker="o", label="epoch mean")
    ax[0].set(xlabel="step", ylabel="training loss (nats/token)", title="training loss")
    ax[0].legend(fontsize=8)
    ax[1].plot(at, [r[f"valid_{metric}"] for r in rows], marker="o", color="C1")
    ax[1].set(xlabel="step", ylabel=f"validation {metric}", title=f"validation {metric} after each epoch")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_sparsity(runs: list[tuple[str, float, float]], metric: str, out: str | Path) -> Path:
    """Metric against measured state sparsity, one labelled point per run ``(label, sparsity, metric)``."""
    return plot_points([(label, sp, metric, m) for label, sp, m in runs], out)


def plot_points(points: list[tuple[str, float, str, float]], out: str | Path) -> Path:
    """One panel per metric (bits/char and accuracy never share an axis), each point a run
    ``(label, sparsity, metric name, value)`` against its measured state sparsity."""
    plt = _plt()
    metrics = list(dict.fromkeys(p[2] for p in points))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, sp, _, m in (p for p in points if p[2] == metric):
            ax.scatter([sp * 100], [m], s=40)
            ax.annotate(label, (sp * 100, m), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set(xlabel="zero hidden states (%)", ylabel=f"test {metric}", title=f"test {metric} vs state sparsity")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110, metadata={"Title": POINTS_TITLE})
    plt.close(fig)
    return Path(out)


def is_points_plot(path: str | Path) -> bool:
    """Whether ``path`` is an image ``plot_points`` wrote (PNG, PDF or SVG keep the title as plain text)."""
    p = Path(path)
    try:
        if p.stat().st_size > 2**24:
            return False
        return POINTS_TITLE.encode() in p.read_bytes()
    except OSError:
        return False
