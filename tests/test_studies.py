"""results/studies.py's scheduler: a row that starts from or distils another run waits for it."""
import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("studies", Path(__file__).parents[1] / "results" / "studies.py")
studies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(studies)

ROWS = {"fp": [], "ft": ["--init-from", "{study}/fp-s{seed}", "--teacher", "{study}/fp-s{seed}"]}


def _finish(d: Path, epochs: int = 2) -> None:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"epochs": epochs}))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e + 1}) + "\n" for e in range(epochs)))


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dependent_waits_until_its_run_has_finished(here):
    pending = [("ft", 0), ("fp", 0)]
    assert studies.pick(pending, ROWS, "x", set()) == (1, True)  # fp first although listed second
    # fp training now (half done): ft waits
    d = studies.run_dir("x", "fp", 0)
    _finish(d, epochs=1)
    (d / "config.json").write_text(json.dumps({"epochs": 2}))
    assert studies.pick([("ft", 0)], ROWS, "x", {d}) == (None, False)
    _finish(studies.run_dir("x", "fp", 1))
    assert studies.pick([("ft", 1)], ROWS, "x", set()) == (0, True)


def test_dependent_on_a_run_nobody_trains_is_dropped(here):
    assert studies.pick([("ft", 3)], ROWS, "x", set()) == (0, False)
    assert studies.depends_on(ROWS["ft"], "x", 3) == [Path("runs/fidelity/x/fp-s3")] * 2


def test_a_recorded_run_counts_as_done_unless_asked_again(here):
    todo = [("fp", 0), ("fp", 1), ("fp", 2)]
    _finish(studies.run_dir("x", "fp", 2))
    kept = {str(studies.run_dir("x", "fp", s)) for s in (0, 1)}  # in results/runs.json, directories gone
    assert studies.to_train(todo, "x", kept) == []
    assert studies.to_train(todo, "x", kept, again=True) == [("fp", 0), ("fp", 1)]
    d = studies.run_dir("x", "fp", 1)  # a rerun that started: it resumes
    d.mkdir(parents=True)
    (d / "checkpoint.pt").write_bytes(b"")
    assert studies.to_train(todo, "x", kept) == [("fp", 1)]
    assert studies.to_train(todo, "x", set()) == [("fp", 0), ("fp", 1)]


def test_a_marker_names_a_running_run_only_while_the_run_is_unfinished(here):
    import os
    d = studies.run_dir("x", "fp", 0)
    _finish(d, epochs=1)
    (d / "config.json").write_text(json.dumps({"epochs": 2}))
    marker = d.with_name(d.name + ".running")
    marker.write_text(str(os.getpid()))  # a live pid
    assert studies.running(d)
    _finish(studies.run_dir("x", "fp", 1))
    done = studies.run_dir("x", "fp", 1)
    done.with_name(done.name + ".running").write_text(str(os.getpid()))  # stale marker, pid reused
    assert not studies.running(done)
    marker.write_text("not a pid")
    assert not studies.running(d)


@pytest.mark.parametrize("script, argv", [("studies.py", ["linux", "--workers", "0"]),
                                          ("stream_bpc.py", ["RUN", "--threads", "0"]),
                                          ("stream_bpc.py", ["no-such-run"]),
                                          ("paper_gpu.py", ["data", "FILE"]),
                                          ("paper_gpu.py", ["summarize", "FILE"])])
def test_the_study_scripts_refuse_bad_arguments_with_exit_2(here, script, argv):
    """No worker would ever start (--workers 0 looped forever), torch refuses 0 threads, a missing run or a
    file in place of a folder: one line and exit status 2, not a traceback."""
    import subprocess
    import sys
    (here / "FILE").write_text("x")
    p = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "results" / script),
                        *argv], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "error:" in p.stderr and "Traceback" not in p.stderr
