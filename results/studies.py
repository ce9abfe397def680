"""Run the fidelity study's training runs in the background, resumably.

Each study is a recipe (its fixed budget) and a list of rows (flags that differ) x seeds. A run that
has finished is skipped, one with a checkpoint is resumed, the rest start; ``--workers`` runs go at once,
one thread each; a row that starts from or distils another run (``--init-from``, ``--teacher``)
starts once that run has finished. Killing this script (or the session) loses at most
``checkpoint_every`` steps per run: start it again and it carries on.

    python results/studies.py linux --workers 2          # the rows of STUDIES["linux"]
    python results/studies.py linux --list               # what is done, running or left
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from leanrnn.cli.checks import positive  # torch-free
from leanrnn.train import epochs_done  # torch-free

PAPER = ["--batch-norm", "--stochastic"]  # the ICLR recipe: per-time-step BN, stochastic weights
ROWS_LM = {
    "fp": [],
    "fp-bn": ["--batch-norm"],
    "fp-bn-x2": ["--batch-norm", "--epochs", "6"],  # the fine-tuned rows' budget in all: the text twice
    "ternary-bn-x2": ["--weights", "ternary", *PAPER, "--epochs", "6"],  # the paper's recipe for as long
    "ternary-bn-sp90-x2": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", "--epochs", "6"],
    # four times the budget with the rate decayed tenfold, every step (the pystdlib rows' finding)
    "fp-bn-x4-decay": ["--batch-norm", "--epochs", "12", "--lr-final", "0.0005", "--lr-schedule", "step"],
    "ternary-bn-x4-decay": ["--weights", "ternary", *PAPER, "--epochs", "12", "--lr-final", "0.0005",
                            "--lr-schedule", "step"],
    "fp-bn-sp90-x4-decay": ["--batch-norm", "--state-sparsity", "0.9", "--epochs", "12", "--lr-final", "0.0005",
                            "--lr-schedule", "step"],
    "ternary-bn-sp90-x4-decay": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", "--epochs", "12",
                                 "--lr-final", "0.0005", "--lr-schedule", "step"],
    # a 64-wide fp embedding in front instead of one-hot characters (the reference code's input): with one-hot
    # input each character's input projection is a column of ternary codes
    "fp-bn-e64": ["--batch-norm", "--embed", "64"],
    "ternary-bn-e64": ["--weights", "ternary", *PAPER, "--embed", "64"],
    "fp-sp90": ["--state-sparsity", "0.9"],
    "fp-bn-sp90": ["--batch-norm", "--state-sparsity", "0.9"],  # pruning's cost apart from the weights'
    "binary-bn": ["--weights", "binary", *PAPER],
    "ternary-bn": ["--weights", "ternary", *PAPER],
    "ternary-bn-sp90": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9"],
}
SHARED = ["--batch-norm", "--bn-stats", "shared"]
GRADUAL = ["--state-sparsity", "0.9", "--prune-schedule", "cubic", "--prune-start", "0.1", "--prune-end", "0.6"]
ROWS_NEW = {
    "fp-bnsh": SHARED,
    "ternary-bnsh": ["--weights", "ternary", *SHARED],
    "binary-bnsh": ["--weights", "binary", *SHARED],
    "fp-wn": ["--weight-norm"],
    "ternary-wn": ["--weights", "ternary", "--weight-norm"],
    "binary-wn": ["--weights", "binary", "--weight-norm"],
    "fp-sp90-cubic": GRADUAL,
    "ternary-bnsh-sp90-cubic": ["--weights", "ternary", *SHARED, *GRADUAL],
    "ternary-wn-sp90-cubic": ["--weights", "ternary", "--weight-norm", *GRADUAL],
}
# Fine-tuning: start from the same seed's trained ternary run (twice the budget in all, stated as such),
# ramp the zeros over the first half, distil from the same seed's fp run.
FINETUNE = ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", "--prune-schedule", "cubic",
            "--prune-start", "0.0", "--prune-end", "0.5", "--init-from", "{study}/ternary-wn-s{seed}"]
ROWS_FT = {
    "ternary-wn-sp90-ft": FINETUNE,
    "ternary-wn-sp90-ft-kd": [*FINETUNE, "--teacher", "{study}/fp-wn-s{seed}"],
}
# The frontier: narrower dense models, wider pruned ones (inference cost follows the live states).
ROWS_WIDTH = {
    "fp-h128": ["--hidden", "128"],
    # the papers' width (512 units) at this budget: does the ternary gap close in a wider model?
    "fp-bn-h512": ["--batch-norm", "--hidden", "512"],
    "ternary-bn-h512": ["--weights", "ternary", *PAPER, "--hidden", "512"],
    # and with 90% zeros: on pystdlib (eight budgets) the wider pruned model matched dense fp + BN
    "ternary-bn-sp90-h512": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", "--hidden", "512"],
    "fp-bn-sp90-h512": ["--batch-norm", "--state-sparsity", "0.9", "--hidden", "512"],
    # pystdlib's best 256-unit pruned lever at this width: deterministic ternarization, distilled from the
    # same seed's pruned fp model of that width
    "ternary-bn-sp90-det-kd-h512": ["--weights", "ternary", "--batch-norm", "--no-stochastic", "--state-sparsity",
                                    "0.9", "--hidden", "512", "--teacher", "{study}/fp-bn-sp90-h512-s{seed}"],
    # ... trained four times as long with the rate decayed tenfold every step: on pystdlib eight budgets so
    # decayed took the 512-unit pruned ternary model to dense fp + BN of its width. At this width fp + BN
    # overfits linux's 3.6 M training characters after 2-3 epochs, so both stop after 3 epochs without a
    # better validation score
    "fp-bn-h512-x4-decay": ["--batch-norm", "--hidden", "512", "--epochs", "12", "--lr-final", "0.0005",
                            "--lr-schedule", "step", "--patience", "3"],
    "ternary-bn-sp90-h512-x4-decay": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", "--hidden", "512",
                                      "--epochs", "12", "--lr-final", "0.0005", "--lr-schedule", "step",
                                      "--patience", "3"],
    # the recipe's budget at twice its learning rates (0.01 -> 0.003): the pruned model still improves when
    # the budget ends (GPU rows) while fp + BN overfits, so is it held back by how far it moves in 3 epochs?
    "ternary-bn-sp90-h512-lr2": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", "--hidden", "512",
                                 "--lr", "0.01", "--lr-final", "0.003"],
    # four times the width at 90% and 95% zeros (about 102 and 51 live states): on pystdlib twice the width
    # at 90% closed the combined gap; is linux's gap a matter of live states and the weights behind them?
    "ternary-bn-sp90-h1024": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", "--hidden", "1024"],
    "ternary-bn-sp95-h1024": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.95", "--hidden", "1024"],
    # and fp + BN at that width: the equal-width reference (at 512 units fp + BN already overfits by epoch 3)
    "fp-bn-h1024": ["--batch-norm", "--hidden", "1024"],
    "fp-h64": ["--hidden", "64"],
    "fp-h32": ["--hidden", "32"],
    "fp-h16": ["--hidden", "16"],
    "ternary-wn-sp90-cubic-h256": ["--weights", "ternary", "--weight-norm", *GRADUAL, "--hidden", "256"],
}
# The demo's recipe on a corpus: shared BN, zeros from the start, distilled from the fp run with BN.
ROWS_KD = {"ternary-bnsh-sp90-kd": ["--weights", "ternary", *SHARED, "--state-sparsity", "0.9",
                                    "--teacher", "{study}/fp-bn-s{seed}"],
           # fine-tuned from the same seed's fp run with the same normalization (twice the budget in all)
           "ternary-bn-kd-ft": ["--weights", "ternary", *PAPER, "--teacher", "{study}/fp-bn-s{seed}",
                                "--init-from", "{study}/fp-bn-s{seed}"],
           "ternary-bn-sp90-kd-ft": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9",
                                     "--teacher", "{study}/fp-bn-s{seed}", "--init-from", "{study}/fp-bn-s{seed}"],
           # the same, continuing at the learning rate where the fp-bn run ended (0.0015) and decaying it by
           # the recipe's ratio (0.3), instead of restarting at the recipe's 0.005
           "ternary-bn-kd-ft-lr": ["--weights", "ternary", *PAPER, "--teacher", "{study}/fp-bn-s{seed}",
                                   "--init-from", "{study}/fp-bn-s{seed}", "--lr", "0.0015", "--lr-final", "0.00045"],
           "ternary-bn-sp90-kd-ft-lr": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9",
                                        "--teacher", "{study}/fp-bn-s{seed}", "--init-from", "{study}/fp-bn-s{seed}",
                                        "--lr", "0.0015", "--lr-final", "0.00045"],
           # the same with the loaded matrices fitted to the ternary threshold (--init-rescale)
           "ternary-bn-kd-ft-lr-rs": ["--weights", "ternary", *PAPER, "--teacher", "{study}/fp-bn-s{seed}",
                                      "--init-from", "{study}/fp-bn-s{seed}", "--init-rescale", "--lr", "0.0015",
                                      "--lr-final", "0.00045"],
           "ternary-bn-sp90-kd-ft-lr-rs": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9",
                                           "--teacher", "{study}/fp-bn-s{seed}", "--init-from", "{study}/fp-bn-s{seed}",
                                           "--init-rescale", "--lr", "0.0015", "--lr-final", "0.00045"],
           # ... with deterministic ternarization in training (TWN-style straight-through fine-tuning)
           "ternary-bn-kd-ft-lr-rs-det": ["--weights", "ternary", "--batch-norm", "--no-stochastic", "--teacher",
                                          "{study}/fp-bn-s{seed}", "--init-from", "{study}/fp-bn-s{seed}",
                                          "--init-rescale", "--lr", "0.0015", "--lr-final", "0.00045"],
           # ... from the same seed's pruned fp + BN run (weights that already work with the zeros), distilled
           # from it
           "ternary-bn-sp90-kd-ftp-lr": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", "--teacher",
                                         "{study}/fp-bn-sp90-s{seed}", "--init-from", "{study}/fp-bn-sp90-s{seed}",
                                         "--lr", "0.0015", "--lr-final", "0.00045"],
           "binary-bn-kd-ft-lr": ["--weights", "binary", *PAPER, "--teacher", "{study}/fp-bn-s{seed}",
                                  "--init-from", "{study}/fp-bn-s{seed}", "--lr", "0.0015", "--lr-final", "0.00045"],
           # ... with the latent weights clipped to [-a, a] after each step (--clip-latent, BinaryConnect's rule)
           "ternary-bn-kd-ft-lr-clip": ["--weights", "ternary", *PAPER, "--teacher", "{study}/fp-bn-s{seed}",
                                        "--init-from", "{study}/fp-bn-s{seed}", "--clip-latent", "--lr", "0.0015",
                                        "--lr-final", "0.00045"],
           "ternary-bn-kd-ft-lr-rs-clip": ["--weights", "ternary", *PAPER, "--teacher", "{study}/fp-bn-s{seed}",
                                           "--init-from", "{study}/fp-bn-s{seed}", "--init-rescale", "--clip-latent",
                                           "--lr", "0.0015", "--lr-final", "0.00045"],
           "ternary-bn-sp90-kd-ft-rs-clip": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9",
                                             "--teacher", "{study}/fp-bn-s{seed}", "--init-from",
                                             "{study}/fp-bn-s{seed}", "--init-rescale", "--clip-latent"],
           "ternary-wn-sp90-kd-ft": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9",
                                     "--teacher", "{study}/fp-bn-s{seed}", "--init-from", "{study}/fp-s{seed}"]}
# Pruning only the state fed back into W_hh: the output layer reads every unit.
DO = ["--no-prune-output"]
ROWS_DO = {
    "fp-sp90-do": ["--state-sparsity", "0.9", *DO],
    "fp-wn-sp90-do": ["--weight-norm", "--state-sparsity", "0.9", *DO],  # fp with the ternary rows' normalization
    "ternary-wn-sp90-do": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO],
    "ternary-bn-sp90-do": ["--weights", "ternary", *PAPER, "--state-sparsity", "0.9", *DO],
    "fp-sp90-do-h256": ["--state-sparsity", "0.9", *DO, "--hidden", "256"],
    "ternary-wn-sp90-do-h256": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                "--hidden", "256"],
    "fp-sp90-h256": ["--state-sparsity", "0.9", "--hidden", "256"],
    "fp-sp90-do-cubic": [*GRADUAL, *DO],
    "ternary-wn-sp90-do-ft-kd": [*FINETUNE, *DO, "--teacher", "{study}/fp-wn-s{seed}"],
    "fp-sp90-ste": ["--state-sparsity", "0.9", "--prune-grad", "ste"],
    "fp-sp90-do-ste": ["--state-sparsity", "0.9", *DO, "--prune-grad", "ste"],
    # ternary fine-tuned from and distilled from the same seed's fp run with weight norm (the demo's recipe
    # without pruning; twice the budget in all)
    "ternary-wn-kd-ft": ["--weights", "ternary", "--weight-norm", "--init-from", "{study}/fp-wn-s{seed}",
                         "--teacher", "{study}/fp-wn-s{seed}"],
    "ternary-wn-sp90-do-kd-ft": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                 "--init-from", "{study}/fp-wn-s{seed}", "--teacher", "{study}/fp-wn-s{seed}"],
    # three times the budget (the pruned classifiers underfit at the recipe's 40 epochs)
    "fp-e120": ["--epochs", "120"],
    "fp-sp90-do-e120": ["--state-sparsity", "0.9", *DO, "--epochs", "120"],
    "ternary-wn-sp90-do-e120": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                "--epochs", "120"],
    # the ICLR reference's own budget for sequential images (sMNIST: 200 epochs)
    "fp-e200": ["--epochs", "200"],
    "fp-sp90-do-e200": ["--state-sparsity", "0.9", *DO, "--epochs", "200"],
    "ternary-wn-e200": ["--weights", "ternary", "--weight-norm", "--epochs", "200"],
    "ternary-wn-sp90-do-e200": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                "--epochs", "200"],
    # twice the width at the same 90% zeros (twice the live states of the 128-unit pruned rows, a fifth of
    # dense fp's), and the dense fp model of that width
    "fp-h256-e200": ["--hidden", "256", "--epochs", "200"],
    "fp-sp90-do-h256-e200": ["--state-sparsity", "0.9", *DO, "--hidden", "256", "--epochs", "200"],
    "ternary-wn-sp90-do-h256-e200": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                     "--hidden", "256", "--epochs", "200"],
    # ternary fine-tuned from the same seed's pruned fp model of that width (its weights already work with
    # 90% zero states) and distilled from it: 40 more epochs (6x the recipe's budget in all) or 200 (10x)
    "ternary-wn-sp90-do-h256-ft-kd-e40": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                          "--hidden", "256", "--init-from", "{study}/fp-sp90-do-h256-e200-s{seed}",
                                          "--teacher", "{study}/fp-sp90-do-h256-e200-s{seed}"],
    "ternary-wn-sp90-do-h256-ft-kd-e200": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                           "--hidden", "256", "--epochs", "200", "--init-from",
                                           "{study}/fp-sp90-do-h256-e200-s{seed}", "--teacher",
                                           "{study}/fp-sp90-do-h256-e200-s{seed}"],
    # the same at the recipe's width, from the pruned fp run with weight norm (fashion-mnist)
    "ternary-wn-sp90-do-ftp-kd": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9", *DO,
                                  "--init-from", "{study}/fp-wn-sp90-do-s{seed}", "--teacher",
                                  "{study}/fp-wn-sp90-do-s{seed}"],
    # the frontier's other sparsities
    "fp-sp50-do": ["--state-sparsity", "0.5", *DO],
    "fp-sp75-do": ["--state-sparsity", "0.75", *DO],
    "ternary-wn-sp50-do": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.5", *DO],
    "ternary-wn-sp75-do": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.75", *DO],
}
ROWS_LM = {**ROWS_LM, **ROWS_NEW, **ROWS_FT, **ROWS_KD, **ROWS_WIDTH, **ROWS_DO}
T, BN, SH = ["--weights", "ternary"], ["--batch-norm"], ["--batch-norm", "--bn-stats", "shared"]
SP, KD = ["--state-sparsity", "0.9"], ["--teacher", "{study}/fp-s{seed}"]
DECAY = ["--lr-final", "0.001", "--lr-schedule", "step"]
DECAY6 = ["--lr-final", "0.0006", "--lr-schedule", "step"]
CUBIC = ["--prune-schedule", "cubic", "--prune-start", "0.1", "--prune-end", "0.6"]
ROWS_DEMO = {
    "fp": ["--lr", "0.006"],
    "fp-x2": ["--lr", "0.006", "--epochs", "2"],  # the fine-tuned rows' budget in all: the text twice
    "fp-sp90": ["--lr", "0.006", *SP],
    "fp-h128": ["--lr", "0.006", "--hidden", "128"],
    "fp-h64": ["--lr", "0.006", "--hidden", "64"],
    "binary-bn": ["--weights", "binary", *BN],
    "ternary-bn": [*T, *BN],
    "ternary-bn-sp90": [*T, *BN, *SP],
    "ternary-bn-sp90-cubic": [*T, *BN, *SP, *CUBIC],
    "ternary-wn-sp90-cubic": [*T, "--weight-norm", *SP, *CUBIC],
    "ternary-bnsh-sp90-cubic": [*T, *SH, *SP, *CUBIC],
    "ternary-bnsh-sp90": [*T, *SH, *SP],
    "ternary-bn-sp90-kd": [*T, *BN, *SP, *KD],
    "ternary-bn-sp90-kd-w0.8-t2": [*T, *BN, *SP, *KD, "--distill-weight", "0.8", "--distill-temp", "2"],
    "ternary-bnsh-sp90-kd": [*T, *SH, *SP, *KD],
    # fine-tuned from the same seed's fp run (twice the budget in all, stated as such)
    "ternary-bnsh-sp90-kd-ft": [*T, *SH, *SP, *KD, "--init-from", "{study}/fp-s{seed}"],
    "ternary-wn-sp90-kd-ft": [*T, "--weight-norm", *SP, *KD, "--init-from", "{study}/fp-s{seed}"],
    "ternary-bnsh-sp90-kd-do": [*T, *SH, *SP, *KD, "--no-prune-output"],
    # fp with the low-bit rows' normalizations (and their learning rate): what quantization is measured against
    "fp-bn": [*BN],
    "fp-wn": ["--weight-norm"],
    # eight times the budget at the same constant learning rate, each run evaluated at its best validation
    # epoch (early stopping): the rows near convergence; each epoch's validation bpc is the row at that
    # multiple of the budget, so the gaps can also be read against training length
    "fp-x8": ["--lr", "0.006", "--epochs", "8"],
    "fp-bn-x8": [*BN, "--epochs", "8"],
    "ternary-bn-x8": [*T, *BN, "--epochs", "8"],
    "ternary-bn-x16": [*T, *BN, "--epochs", "16"],  # still improving at 8x: how far does it go?
    "ternary-bn-sp90-x8": [*T, *BN, *SP, "--epochs", "8"],
    "fp-bn-sp90-x8": [*BN, *SP, "--epochs", "8"],  # pruning's own cost near convergence
    # the same length with the learning rate decayed tenfold over it (ternary plateaus at the constant rate)
    "fp-bn-x8-decay": [*BN, "--epochs", "8", "--lr-final", "0.001"],
    "fp-x8-decay": ["--lr", "0.006", "--epochs", "8", "--lr-final", "0.0006"],  # plain fp, the other reference
    "ternary-bn-x8-decay": [*T, *BN, "--epochs", "8", "--lr-final", "0.001"],
    "fp-bn-sp90-x8-decay": [*BN, *SP, "--epochs", "8", "--lr-final", "0.001"],
    "ternary-bn-sp90-x8-decay": [*T, *BN, *SP, "--epochs", "8", "--lr-final", "0.001"],
    # twice the width at 90% zeros (about 48 live states: fewer weight bytes read per step than dense ternary
    # at 256) and at 95% (about 24 live states, as many as the 256-unit pruned rows)
    "ternary-bn-sp90-h512-x8-decay": [*T, *BN, *SP, "--hidden", "512", "--epochs", "8", "--lr-final", "0.001"],
    "ternary-bn-sp95-h512-x8-decay": [*T, *BN, "--state-sparsity", "0.95", "--hidden", "512", "--epochs", "8",
                                      "--lr-final", "0.001"],
    "fp-bn-h512-x8-decay": [*BN, "--hidden", "512", "--epochs", "8", "--lr-final", "0.001"],  # dense, as wide
    # ternary + 90% zeros with deterministic ternarization in training (straight-through): is the sampling
    # noise what the few live states cannot average out?
    "ternary-bn-sp90-det-x8-decay": [*T, *BN, "--no-stochastic", *SP, "--epochs", "8", "--lr-final", "0.001"],
    # the two levers together: deterministic ternarization at twice the width with 90% zeros
    "ternary-bn-sp90-det-h512-x8-decay": [*T, *BN, "--no-stochastic", *SP, "--hidden", "512", "--epochs", "8",
                                          "--lr-final", "0.001"],
    "binary-bn-x8-decay": ["--weights", "binary", *BN, "--epochs", "8", "--lr-final", "0.001"],
    # ternary + 90% zeros fine-tuned for 4 more budgets from the pruned fp run at 8x and distilled from it
    "ternary-bn-sp90-kd-ftp-x4": [*T, *BN, *SP, "--epochs", "4", "--init-from", "{study}/fp-bn-sp90-x8-s{seed}",
                                  "--teacher", "{study}/fp-bn-sp90-x8-s{seed}"],
    # deterministic ternarization distilled from the pruned fp run of the same seed, from scratch
    "ternary-bn-sp90-det-kd-x8-decay": [*T, *BN, "--no-stochastic", *SP, "--epochs", "8", "--lr-final", "0.001",
                                        "--teacher", "{study}/fp-bn-sp90-x8-decay-s{seed}"],
    # fine-tuned for 4 more budgets from the decayed pruned fp run and distilled from it, deterministic
    "ternary-bn-sp90-det-kd-ftp-x4-decay": [*T, *BN, "--no-stochastic", *SP, "--epochs", "4", "--lr-final", "0.001",
                                            "--init-from", "{study}/fp-bn-sp90-x8-decay-s{seed}",
                                            "--teacher", "{study}/fp-bn-sp90-x8-decay-s{seed}"],
    "binary-bn-x8": ["--weights", "binary", *BN, "--epochs", "8"],
    # the recipe's budget with the rate decayed tenfold over its 600 steps (per step: one epoch)
    "fp-decay": ["--lr", "0.006", *DECAY6],
    "fp-bn-decay": [*BN, *DECAY],
    "fp-wn-decay": ["--weight-norm", *DECAY],
    "binary-bn-decay": ["--weights", "binary", *BN, *DECAY],
    "ternary-bn-decay": [*T, *BN, *DECAY],
    "fp-bn-sp90-decay": [*BN, *SP, *DECAY],
    "ternary-bn-sp90-decay": [*T, *BN, *SP, *DECAY],
    "ternary-wn-sp90-kd-ft-decay": [*T, "--weight-norm", *SP, *DECAY, "--teacher", "{study}/fp-decay-s{seed}",
                                    "--init-from", "{study}/fp-decay-s{seed}"],
    "ternary-wn-sp90-kd-ft-do": [*T, "--weight-norm", *SP, *KD, "--init-from", "{study}/fp-s{seed}",
                                 "--no-prune-output"],
    # the demo's recipe with one more lever each: deterministic ternarization (better from scratch at 8x), the
    # zeros ramped in over the first half instead of imposed on the dense fp weights at once, the loaded
    # matrices fitted to the ternary threshold
    "ternary-wn-sp90-kd-ft-det": [*T, "--weight-norm", "--no-stochastic", *SP, *KD,
                                  "--init-from", "{study}/fp-s{seed}"],
    "ternary-wn-sp90-kd-ft-ramp": [*T, "--weight-norm", *SP, "--prune-schedule", "cubic", "--prune-start", "0",
                                   "--prune-end", "0.5", *KD, "--init-from", "{study}/fp-s{seed}"],
    "ternary-wn-sp90-kd-ft-rs": [*T, "--weight-norm", *SP, *KD, "--init-from", "{study}/fp-s{seed}", "--init-rescale"],
    # twice the width at 90% zeros at this budget (it matched dense fp + BN at 8x): about 51 live states
    "ternary-bn-sp90-h512": [*T, *BN, *SP, "--hidden", "512"],
    "ternary-bn-sp90-h512-kd": [*T, *BN, *SP, "--hidden", "512", *KD],
}
# leanrnn train's defaults: the flags a user would type, nothing else (recipes/defaults-linux.yaml)
ROWS_DEFAULTS = {
    "fp": [],
    "fp-bn": ["--batch-norm"],
    "ternary-sp90": ["--weights", "ternary", "--state-sparsity", "0.9"],  # the default: per-step BN
    "ternary-wn-sp90": ["--weights", "ternary", "--weight-norm", "--state-sparsity", "0.9"],  # the former default
    "ternary-bnsh-sp90": ["--weights", "ternary", "--batch-norm", "--bn-stats", "shared", "--state-sparsity", "0.9"],
    "ternary-det-sp90": ["--weights", "ternary", "--no-stochastic", "--state-sparsity", "0.9"],
    # README's fine-tuning usage: from the fp run (no norm, so weight norm by default) and distilled from it
    "ternary-sp90-kd-ft": ["--weights", "ternary", "--state-sparsity", "0.9", "--init-from", "{study}/fp-s{seed}",
                           "--teacher", "{study}/fp-s{seed}"],
}
STUDIES = {
    "linux": ("recipes/fidelity-linux.yaml", ROWS_LM, [0]),
    "digits": ("recipes/fidelity-digits.yaml", ROWS_LM, [0]),
    "demo": ("recipes/fidelity-demo.yaml", ROWS_DEMO, [0]),
    "shakespeare": ("recipes/fidelity-shakespeare.yaml", ROWS_LM, [0]),
    "fashion-mnist": ("recipes/fidelity-fashion-mnist.yaml", ROWS_LM, [0]),
    "defaults": ("recipes/defaults-linux.yaml", ROWS_DEFAULTS, [0]),
}


def run_dir(study: str, row: str, seed: int) -> Path:
    return Path("runs/fidelity") / study / f"{row}-s{seed}"


def finished(d: Path) -> bool:
    done = epochs_done(d)
    return done is not None and done[0] >= done[1]


def recorded() -> set[str]:
    """The runs ``results/collect.py`` has evaluated and recorded (their directories may be gone)."""
    p = Path(__file__).parent / "runs.json"
    return set(json.loads(p.read_text())) if p.exists() else set()


def running(d: Path) -> bool:
    """Whether another process is training ``d`` now (its pid in ``RUN.running`` beside it is alive). A
    finished run is not: a marker left by a driver that was killed can name a pid the system reused."""
    if finished(d):
        return False
    try:
        os.kill(int(d.with_name(d.name + ".running").read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


def clear_unstarted(d: Path) -> None:
    """A run killed before its first checkpoint left only its config: remove it so the run starts again
    (``leanrnn train`` refuses to write into a directory that holds a run)."""
    if d.is_dir() and not (d / "checkpoint.pt").exists():
        left = {p.name for p in d.iterdir()}
        if left <= {"config.json", "command.txt", "steps.jsonl"}:
            for name in left:
                (d / name).unlink()


def to_train(todo: list[tuple[str, int]], study: str, kept: set[str], again: bool = False) -> list[tuple[str, int]]:
    """The runs of ``todo`` to start or resume: not finished, not training elsewhere, and, unless ``again``,
    not recorded by ``results/collect.py`` with their directory gone (a started rerun resumes)."""
    def left(d: Path) -> bool:
        return not finished(d) and not running(d) and (again or (d / "checkpoint.pt").exists() or str(d) not in kept)
    return [(r, s) for r, s in todo if left(run_dir(study, r, s))]


def depends_on(flags: list[str], study: str, seed: int) -> list[Path]:
    """The runs whose weights a row reads (``--init-from``, ``--teacher``): they must have finished first."""
    return [Path(flags[i + 1].format(study=Path("runs/fidelity") / study, seed=seed))
            for i, f in enumerate(flags[:-1]) if f in ("--init-from", "--teacher")]


def pick(pending: list[tuple[str, int]], rows: dict, study: str, training: set[Path]) -> tuple[int | None, bool]:
    """``(k, True)``: ``pending[k]`` can start (the runs it reads have finished); ``(k, False)``: it never
    can (a run it reads is neither finished, pending, training here nor elsewhere); ``(None, _)``: wait."""
    for k, (r, s) in enumerate(pending):
        deps = [p for p in depends_on(rows[r], study, s) if not finished(p)]
        if not deps:
            return k, True
        queued = {run_dir(study, r2, s2) for r2, s2 in pending} | training
        if not all(p in queued or running(p) for p in deps):
            return k, False
    return None, False


def command(recipe: str, flags: list[str], seed: int, d: Path, device: str = "cpu") -> list[str]:
    """The run's ``leanrnn`` arguments: a resume where it has a checkpoint (on ``device``, wherever it
    started), else a new run."""
    if (d / "checkpoint.pt").exists():
        return ["train", "--resume", str(d), "--threads", "1", "--no-progress", "--device", device]
    flags = [f.format(study=d.parent, seed=seed) for f in flags]
    return ["train", "--recipe", recipe, *flags, "--seed", str(seed), "--threads", "1", "--no-progress",
            "--device", device, "--out", str(d)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", choices=sorted(STUDIES), help="which study's runs")
    ap.add_argument("--workers", type=positive(int), default=2, help="runs at once, one thread each (default 2)")
    ap.add_argument("--rows", nargs="*", help="only these rows (default: all)")
    ap.add_argument("--seeds", nargs="*", type=int, help="override the study's seeds")
    ap.add_argument("--list", action="store_true", help="print each run's state and exit")
    ap.add_argument("--device", default="cpu", help="where the runs train: cpu (default) or cuda[:N]; a run "
                    "resumes on it wherever it started")
    ap.add_argument("--again", action="store_true", help="also train the runs that results/runs.json records "
                    "but whose directories are not here (default: a recorded run counts as done)")
    args = ap.parse_args()
    recipe, rows, seeds = STUDIES[args.study]
    unknown = sorted(set(args.rows or ()) - set(rows))
    if unknown:
        ap.error(f"unknown row(s) {', '.join(unknown)}; the rows of {args.study}: {', '.join(rows)}")
    todo = [(r, s) for r in (args.rows or rows) for s in (args.seeds or seeds)]  # in the order given
    kept = recorded()
    if args.list:
        for r, s in todo:
            d = run_dir(args.study, r, s)
            state = ("done" if finished(d) else "started" if (d / "checkpoint.pt").exists() else
                     "recorded (results/runs.json; its files are not here)" if str(d) in kept else "to do")
            print(f"{d}: {state}")
        return 0
    pending = to_train(todo, args.study, kept, args.again)
    procs: list[tuple[subprocess.Popen, Path]] = []
    while pending or procs:
        while len(procs) < args.workers:
            k, ready = pick(pending, rows, args.study, {d for _, d in procs})
            if k is None:
                break
            r, s = pending.pop(k)
            if not ready:
                print(f"skip {run_dir(args.study, r, s)}: it needs a run this call neither trains nor finds "
                      "finished (--init-from/--teacher); add its row", flush=True)
                continue
            d = run_dir(args.study, r, s)
            clear_unstarted(d)
            argv = command(recipe, rows[r], s, d, args.device)
            d.parent.mkdir(parents=True, exist_ok=True)
            log = open(d.parent / f"{d.name}.log", "a")  # noqa: SIM115  (the child writes to it until it ends)
            print(f"start {d}: leanrnn {shlex.join(argv)}", flush=True)
            env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
            p = subprocess.Popen([sys.executable, "-m", "leanrnn.cli", *argv], stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, **env})
            d.with_name(d.name + ".running").write_text(str(p.pid))
            procs.append((p, d))
        time.sleep(5)
        for p, d in list(procs):
            if p.poll() is not None:
                procs.remove((p, d))
                d.with_name(d.name + ".running").unlink(missing_ok=True)
                print(f"{'done' if p.returncode == 0 else f'FAILED ({p.returncode})'} {d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
