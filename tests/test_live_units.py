"""results/live_units.py: per-unit live fractions of a trained run, in eval mode."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from leanrnn.cli import main

SCRIPT = Path(__file__).parents[1] / "results" / "live_units.py"
_spec = importlib.util.spec_from_file_location("live_units", SCRIPT)
live_units = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(live_units)

TINY = ["train", "--task", "char-lm", "--epochs", "1", "--steps-per-epoch", "4", "--hidden", "16", "--embed", "8",
        "--batch", "4", "--seq-len", "10", "--max-chars", "20000", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    assert main(TINY + ["--out", str(d / "dense")]) == 0
    assert main(TINY + ["--state-sparsity", "0.75", "--out", str(d / "pruned")]) == 0
    return d


def test_a_dense_run_is_live_everywhere_and_a_pruned_one_is_not(runs):
    dense = live_units.live_fractions(str(runs / "dense"), 3)
    pruned = live_units.live_fractions(str(runs / "pruned"), 3)
    assert dense.shape == pruned.shape == (16,)
    assert float(dense.min()) > 0.99  # an unpruned LSTM output is exactly zero almost never
    assert float(pruned.min()) >= 0.0 and float(pruned.max()) <= 1.0
    # the mean over units is the live share the trainer measured on the validation split
    zeros = json.loads((runs / "pruned" / "metrics.jsonl").read_text().splitlines()[-1])["valid_state_sparsity"]
    assert abs(float(pruned.mean()) - (1 - zeros)) < 0.05 and zeros > 0.5


def test_the_script_prints_one_line_per_run_and_refuses_a_missing_one(runs):
    ok = subprocess.run([sys.executable, str(SCRIPT), str(runs / "pruned"), "--segments", "2"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.count("units of 16 live in") == 1
    bad = subprocess.run([sys.executable, str(SCRIPT), str(runs / "none")], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and str(runs / "none") in bad.stderr and bad.stdout == ""
