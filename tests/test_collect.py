"""results/collect.py's records: a table row keeps its seeds when the runs' directories are gone."""
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

RESULTS = Path(__file__).parents[1] / "results"
sys.path.insert(0, str(RESULTS))
_spec = importlib.util.spec_from_file_location("collect", RESULTS / "collect.py")
collect = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(collect)

CFG = {"task": "char-lm", "weights": "ternary", "batch_norm": True, "bn_stats": "step", "weight_norm": False,
       "state_sparsity": 0.9, "hidden": 8, "layers": 1, "embed": 0, "prune_output": True, "epochs": 2,
       "init_from": None, "teacher": None}


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("r.yaml").write_text("task: char-lm\nepochs: 2\n")
    monkeypatch.setattr(collect, "RUNS", Path("runs/fidelity"))
    monkeypatch.setattr(collect, "STUDIES", {"x": ("r.yaml", {"t": ["--weights", "ternary"]}, [0])})
    # what evaluating seed s on its test split gives: 2 + s bits/char, 90% zeros
    monkeypatch.setattr(collect, "evaluate", lambda d: {"bpc": 2.0 + int(d.name[-1]), "state_sparsity": 0.9,
                                                        "metric_name": "bpc", "vocab_size": 5})


def _run(seed: int, device: str = "cpu") -> Path:
    d = Path(f"runs/fidelity/x/t-s{seed}")
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({**CFG, "seed": seed}))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "valid_bpc": 3.0 - e, "device": device}) + "\n"
                                             for e in (1, 2)))
    (d / "best.pt").write_bytes(b"")
    return d


def test_a_row_keeps_its_seeds_from_the_records_once_the_runs_are_gone(study):
    recs = {}
    d0, d1 = _run(0), _run(1)
    (row,) = collect.collect_study("x", recs)
    assert (row["seeds"], row["mean"], row["values"]) == (2, 2.5, [2.0, 3.0])
    assert row["curve"] == [[1, 2.0], [2, 1.0]] and row["budget"] == 1 and row["trained_on"] == "CPU"
    shutil.rmtree(d0)
    shutil.rmtree(d1)
    again = json.loads(json.dumps(recs))  # as written to and read back from runs.json
    assert collect.collect_study("x", again) == [row]
    _run(2, device="NVIDIA H100")  # a new seed on disk joins the recorded ones
    (row3,) = collect.collect_study("x", again)
    assert row3["values"] == [2.0, 3.0, 4.0] and row3["trained_on"] == "NVIDIA H100: 1 of 3 runs, the rest CPU"


def test_an_unfinished_run_on_disk_neither_counts_nor_replaces_its_record(study):
    recs = {}
    _run(0)
    collect.collect_study("x", recs)
    kept = json.loads(json.dumps(recs))
    shutil.rmtree("runs/fidelity/x/t-s0")
    d = _run(0)
    (d / "best.pt").unlink()  # a rerun still training
    (d / "config.json").write_text(json.dumps({**CFG, "epochs": 4}))
    (row,) = collect.collect_study("x", kept)
    assert row["values"] == [2.0] and kept["runs/fidelity/x/t-s0"]["config"]["epochs"] == 2


def test_a_row_with_only_a_kept_label_keeps_it():
    label = "NVIDIA H200: 2 of 3 runs, the rest CPU"
    kept = [{"devices": None, "trained_on": label}] * 3
    assert collect.where(kept) == label
    assert collect.where([{"devices": None, "trained_on": "CPU"}, {"devices": ["cpu"]}]) == "CPU"
    assert collect.where([{"devices": None, "trained_on": label}, {"devices": ["cpu"]}]) == f"{label}; 1 more: CPU"


def test_the_validation_column_is_the_scored_epochs(study):
    recs = {}
    _run(0), _run(1)
    (row,) = collect.collect_study("x", recs)
    assert row["valid_values"] == [1.0, 1.0]  # the best (lowest) epoch of each seed's curve 2.0, 1.0
    assert "| 1.0000 ± 0.0000 |" in collect.table([row])
    recs["runs/fidelity/x/t-s1"]["valid"] = [[1, 1.5], [2, 2.5]]
    recs["runs/fidelity/x/t-s1"]["config"]["prune_schedule"] = "cubic"  # scored at its last epoch
    recs["runs/fidelity/x/t-s0"]["valid"] = None  # a record kept without its curve
    shutil.rmtree("runs/fidelity/x")
    (row,) = collect.collect_study("x", recs)
    assert row["valid_values"] == [2.5] and "| 2.5000 (1 of 2) |" in collect.table([row])


def test_a_corpus_split_by_file_gets_a_column_without_the_files_that_carry_its_score(study, monkeypatch):
    Path("r.yaml").write_text("task: char-lm\ndata: lx\nepochs: 2\n")  # a corpus split by file
    monkeypatch.setattr(collect, "FILE_SPLITS", {"lx": "-pinfunc.h"})
    # seed s: 1.5 + s bits/char on the tables, 2.5 + s on the other files
    monkeypatch.setattr(collect, "evaluate_files", lambda d, match: {
        "split": "test", "match": match, "all": 2.0 + int(d.name[-1]),
        "matching": {"bpc": 1.5 + int(d.name[-1])}, "rest": {"bpc": 2.5 + int(d.name[-1])}})
    recs = {}
    _run(0), _run(1)
    (row,) = collect.collect_study("x", recs)
    assert row["rest_values"] == [2.5, 3.5] and recs["runs/fidelity/x/t-s0"]["files"]["match"] == "-pinfunc.h"
    text = collect.table([row], "-pinfunc.h")
    header, rule, line = text.splitlines()
    assert "without the `*-pinfunc.h` files" in header and rule.count("---") == 13
    assert line.split(" | ")[5:7] == ["2.5000 ± 0.7071", "3.0000 ± 0.7071"]  # whole split, then the rest
    del recs["runs/fidelity/x/t-s1"]["files"]  # a record kept from before the column
    shutil.rmtree("runs/fidelity/x")
    (row,) = collect.collect_study("x", recs)
    assert "| 2.5000 (1 of 2) |" in collect.table([row], "-pinfunc.h")
    assert "without" not in collect.table([row])  # other corpora: no such column
