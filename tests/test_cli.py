import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from leanrnn import cli
from leanrnn.cli import main


def test_demo_runs_and_prints_both_models(capsys, tmp_path):
    js = tmp_path / "demo.json"
    assert main(["demo", "--steps", "3", "--hidden", "16", "--no-progress", "--out", str(tmp_path / "d"),
                 "--json", str(js)]) == 0
    out = capsys.readouterr().out
    from leanrnn.cli.demo import CONFIGS
    assert all(name in out for name in CONFIGS)
    assert "bits/char" in out and "zero states" in out and "runtime µs/step" in out
    d = tmp_path / "d"
    assert (d / "ternary" / "best.pt").exists() and (d / "fp" / "metrics.jsonl").exists()
    r = json.loads(js.read_text())["models"]
    fp, tern = (r[name] for name in CONFIGS)
    assert tern["file_bytes"] < fp["file_bytes"] and tern["state_sparsity"] > 0.85  # 16 units: coarse
    assert fp["runtime_us_per_step"] > 0 and (d / "ternary.lrnn").stat().st_size == tern["file_bytes"]
    # The README's table comes from the JSON alone.
    assert main(["demo", "--markdown", str(js)]) == 0
    assert "| full precision |" in capsys.readouterr().out


@pytest.mark.parametrize("argv, msg", [(["demo", "--steps", "0"], "must be > 0"),
                                       (["demo", "--hidden", "many"], "is not an integer"),
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
                                      "--rounds", "1", "--threads", "1", "--json", str(out)])
    runpy.run_path("benchmarks/bench_train.py", run_name="__main__")
    rows = json.loads(out.read_text())["rows"]
    from importlib import util
    spec = util.spec_from_file_location("bench_train", "benchmarks/bench_train.py")
    bench = util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert next(r["config"] for r in rows) == "nn.LSTM" and len(rows) == len(bench.CONFIGS)
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
