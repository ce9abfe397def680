import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from leanrnn import cli
from leanrnn.cli import main


def test_demo_runs_and_prints_both_models(capsys, tmp_path):
    main(["demo", "--steps", "3", "--hidden", "16", "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "full precision" in out and "ternary + BN + 90% state pruning" in out
    assert "bits/char" in out and "zero states" in out
    assert (tmp_path / "ternary" / "best.pt").exists() and (tmp_path / "fp" / "metrics.jsonl").exists()


@pytest.mark.parametrize("argv, msg", [(["demo", "--steps", "0"], "must be > 0"),
                                       (["demo", "--hidden", "many"], "is not a int"),
                                       (["fly"], "invalid choice")])
def test_bad_flags_give_one_clear_error(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_console_script_help():
    script = Path(sys.executable).parent / "leanrnn"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "leanrnn.cli"]
    r = subprocess.run(cmd + ["--help"], check=False, capture_output=True, text=True)
    assert r.returncode == 0 and "demo" in r.stdout


def test_bench_train_runs(tmp_path, monkeypatch):
    out = tmp_path / "b.json"
    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--hidden", "8", "--seq", "4", "--batch", "2",
                                      "--repeats", "1", "--json", str(out)])
    runpy.run_path("benchmarks/bench_train.py", run_name="__main__")
    rows = json.loads(out.read_text())["rows"]
    assert next(r["config"] for r in rows) == "nn.LSTM" and len(rows) == 4
    assert rows[0]["ratio"] == 1.0 and all(r["tokens_per_s"] > 0 for r in rows)


def test_every_flag_has_help_and_the_docstring_names_every_command():
    import argparse
    parser, table = cli.build_parser()
    todo = [parser]
    while todo:
        p = todo.pop()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                todo.extend(a.choices.values())
            else:
                assert a.help, f"{p.prog} {a.option_strings or a.dest} has no help"
    assert set(table) == {"demo", "train", "eval", "data", "plot", "export", "inspect", "bench", "hw", "rtl"}
    for name in table:
        assert f"``{name}" in cli.__doc__
