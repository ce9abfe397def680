"""A lever tried after training: re-estimate a low-bit model's batch-norm statistics, then score it.

    python results/bn_recal.py RUN [--segments 200] [--weights deterministic|sampled] [--split valid]

A stochastic low-bit model trains with sampled weights, so its running batch-norm statistics are those
of sampled products (an exponential average over the last ~1/momentum batches), while inference uses
the deterministic weights. This script runs the model over the first ``--segments`` segments of the
training split in training mode with the chosen weights (``deterministic``: the ones inference uses;
``sampled``: as in training), with the pruning threshold held, averages each step's batch statistics
exactly over all of them, re-sets the pruning threshold on the eval-mode model (as training does at the
end of an epoch) and prints the split's bits/char before and after. Nothing is saved.
"""
from __future__ import annotations

import argparse
import json

import torch

from leanrnn.cli.checks import positive
from leanrnn.train.checkpoint import CheckpointError
from leanrnn.train.lm import batchify
from leanrnn.train.trainer import calibrate, evaluate_split, load_data, load_run


def reestimate(cfg, model, data, segments: int, sampled: bool) -> None:
    """Replace every batch norm's running statistics by their exact average over ``segments``
    training segments (state carried between them, as in training)."""
    lstm = model.lstm
    layers = lstm._lean_layers()
    model.train()
    for m in model.modules():  # no dropout: the statistics are those of the inference-time network
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    stochastic, lstm.stochastic = lstm.stochastic, sampled
    held = [lay.pruner.momentum for lay in layers]
    for lay in layers:
        lay.pruner.momentum = 0.0  # the threshold stays where training left it
        for bn in (lay.bn_ih, lay.bn_hh, lay.bn_c):
            bn.momentum = 0.0  # 1/(n+1) for ever: the exact mean over all segments
            bn.num_batches_tracked.zero_()
    streams, L, state = batchify(data.train, cfg.batch), cfg.seq_len, None
    with torch.no_grad():
        for k in range(min(segments, (streams.shape[0] - 1) // L)):
            _, state = model(streams[k * L:(k + 1) * L], state)
    for lay, mom in zip(layers, held):
        lay.pruner.momentum = mom
    lstm.stochastic = stochastic
    model.eval()
    if cfg.state_sparsity:
        calibrate(cfg, model, data)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a trained char-lm run with batch norm (its best.pt)")
    ap.add_argument("--segments", type=int, default=200, help="training segments to average over (default 200)")
    ap.add_argument("--weights", choices=("deterministic", "sampled"), default="deterministic",
                    help="the weights the statistics are measured with (default deterministic, inference's)")
    ap.add_argument("--split", choices=("valid", "test"), default="valid", help="the split scored (default valid)")
    ap.add_argument("--threads", type=positive(int), default=1, help="torch CPU threads (default 1)")
    a = ap.parse_args(argv)
    if a.segments < 1:
        ap.error(f"--segments {a.segments}: give at least 1")
    torch.set_num_threads(a.threads)
    try:
        cfg, model, _ = load_run(a.run)
    except CheckpointError as e:
        ap.error(str(e))
    if cfg.task != "char-lm":
        ap.error(f"{a.run} is a {cfg.task} run; give a char-lm run")
    if not cfg.batch_norm:
        ap.error(f"{a.run} has no batch norm to re-estimate; give a run trained with --batch-norm")
    data = load_data(cfg)
    before = evaluate_split(cfg, model, data, a.split)
    reestimate(cfg, model, data, a.segments, a.weights == "sampled")
    after = evaluate_split(cfg, model, data, a.split)
    print(json.dumps({"run": a.run, "split": a.split, "segments": a.segments, "weights": a.weights,
                      "bpc_before": round(before["bpc"], 4), "bpc_after": round(after["bpc"], 4),
                      "zeros_before": round(before["state_sparsity"], 4),
                      "zeros_after": round(after["state_sparsity"], 4)}))


if __name__ == "__main__":
    main()
