"""Bad input for every command: one line on stderr naming the problem and the fix, exit status 2,
no traceback, and nothing already on disk lost. Commands run in-process through ``main``."""
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch

from leanrnn.cli import main

TINY = ["--hidden", "8", "--embed", "4", "--batch", "4", "--seq-len", "10", "--max-chars", "3000", "--epochs", "1",
        "--steps-per-epoch", "2", "--threads", "1", "--no-progress"]


def _call(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_low_bit_training_defaults_to_batch_norm_from_scratch_and_to_the_start_runs_norm(paths, tmp_path, capsys):
    capsys.readouterr()
    cfg = json.loads((paths / "run" / "config.json").read_text())  # trained with --weights ternary alone
    assert cfg["batch_norm"] is True and cfg["bn_stats"] == "step" and cfg["weight_norm"] is False
    fp, shared = tmp_path / "fp", tmp_path / "shared"
    assert main(["train", "--out", str(fp)] + TINY) == 0
    assert main(["train", "--weights", "ternary", "--bn-stats", "shared", "--out", str(shared)] + TINY) == 0
    assert "batch norm is on with shared statistics" in capsys.readouterr().out
    for flags, (wn, bn, stats), note in (
            ([], (False, True, "step"), "per-step batch norm is on"),
            (["--weight-norm"], (True, False, "step"), None),
            (["--no-batch-norm"], (False, False, "step"), "train badly"),
            (["--no-weight-norm"], (False, False, "step"), "train badly"),
            (["--weights", "fp"], (False, False, "step"), None),
            (["--init-from", str(fp)], (True, False, "step"), "weight normalization is on"),  # fp had no norm
            (["--init-from", str(paths / "run")], (False, True, "step"), "as in --init-from"),
            (["--init-from", str(shared)], (False, True, "shared"), "shared statistics) as in --init-from")):
        run = tmp_path / ("_".join(Path(f).name for f in flags) or "default")
        assert main(["train", "--weights", "ternary", *flags, "--out", str(run)] + TINY) == 0
        cfg = json.loads((run / "config.json").read_text())
        assert (cfg["weight_norm"], cfg["batch_norm"], cfg["bn_stats"]) == (wn, bn, stats), flags
        said = capsys.readouterr().out
        assert (note in said) if note else ("note:" not in said), (flags, said)


def test_a_missing_init_from_run_is_named_before_any_note(tmp_path, capsys):
    code, out, err = _call(["train", "--weights", "ternary", "--init-from", str(tmp_path / "typo"),
                           "--out", str(tmp_path / "r")] + TINY, capsys)
    assert code == 2 and "does not exist" in err and "note" not in out


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """One tiny trained run, its model file, and the bad inputs made from them."""
    t = tmp_path_factory.mktemp("cli")
    run = t / "run"
    assert main(["train", "--weights", "ternary", "--out", str(run)] + TINY) == 0
    assert main(["export", str(run), "-o", str(t / "m.lrnn")]) == 0
    (t / "dir").mkdir()
    (t / "empty.txt").write_bytes(b"")
    (t / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (t / "text.txt").write_text("just some notes\n")
    for name, text in {"unknown": "hiden: 8\n", "list": "- hidden\n- 8\n", "bool": 'batch_norm: "no"\n',
                       "float": 'state_sparsity: "0.9"\n', "badyaml": "a: [1, 2\n", "numkey": "1: 2\n",
                       "nullkey": "null: 3\n"}.items():
        (t / f"{name}.yaml").write_text(text)
    (t / "accel_bits8.yaml").write_text("pes: 1\nlanes: 8\nweight_bits: 8\n")
    (t / "accel_type.yaml").write_text("pes: many\n")
    (t / "accel_unknown.yaml").write_text("frob: 1\n")
    ck = torch.load(run / "best.pt", weights_only=True)
    for name, change in {"foreign_cfg": lambda c: c["config"].update(retired_setting=3),
                         "foreign_w": lambda c: c["model"].update({"renamed." + k: c["model"].pop(k)
                                                                   for k in list(c["model"])[:1]}),
                         "cfg_list": lambda c: c.update(config=[1, 2]), "model_list": lambda c: c.update(model=[1]),
                         "vocab_int": lambda c: c.update(vocab=5),
                         "lr_nan": lambda c: c["config"].update(lr=float("nan")),
                         "hidden_x2": lambda c: c["config"].update(hidden=2 * c["config"]["hidden"]),
                         "nan_w": lambda c: c["model"]["lstm.weight_hh_l0"].fill_(float("nan"))}.items():
        c = torch.load(run / "best.pt", weights_only=True)
        change(c)
        (t / name).mkdir()
        torch.save(c, t / name / "best.pt")
        torch.save(c, t / name / "checkpoint.pt")
    (t / "only_best").mkdir()
    shutil.copy(run / "best.pt", t / "only_best" / "best.pt")
    (t / "corrupt").mkdir()
    (t / "corrupt" / "checkpoint.pt").write_bytes(b"garbage" * 10)
    (t / "binaries").mkdir()
    shutil.copy(run / "best.pt", t / "binaries" / "best.pt")
    shutil.copy(t / "m.lrnn", t / "binaries" / "m.lrnn")
    (t / "badeval").mkdir()
    torch.save(ck, t / "badeval" / "best.pt")
    (t / "badeval" / "eval_test.json").write_text("{not json")
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    with safe_open(str(t / "m.lrnn"), framework="numpy") as f:
        header = json.loads(f.metadata()["leanrnn"])
    save_file(load_file(str(t / "m.lrnn")), str(t / "old.lrnn"),
              metadata={"leanrnn": json.dumps({**header, "version": 0})})
    return t


# (case, argv with {t} for the fixture folder, words the error line must hold)
CASES = [
    # train
    ("recipe is a directory", ["train", "--recipe", "{t}/dir"], "is a directory"),
    ("recipe missing", ["train", "--recipe", "{t}/missing.yaml"], "does not exist"),
    ("recipe empty", ["train", "--recipe", "{t}/empty.txt"], "is empty"),
    ("recipe binary", ["train", "--recipe", "{t}/binary.bin"], "not a text file"),
    ("recipe not YAML", ["train", "--recipe", "{t}/badyaml.yaml"], "not valid YAML"),
    ("recipe not a mapping", ["train", "--recipe", "{t}/list.yaml"], "mapping"),
    ("recipe unknown key", ["train", "--recipe", "{t}/unknown.yaml"], "unknown setting(s) hiden"),
    ("recipe number as a key", ["train", "--recipe", "{t}/numkey.yaml"], "unknown setting(s) 1;"),
    ("recipe null as a key", ["train", "--recipe", "{t}/nullkey.yaml"], "unknown setting(s) None;"),
    ("recipe string as bool", ["train", "--recipe", "{t}/bool.yaml"], "batch_norm"),
    ("recipe string as float", ["train", "--recipe", "{t}/float.yaml"], "state_sparsity"),
    ("out is a file", ["train", "--out", "{t}/text.txt"], "is a file"),
    ("out holds a run", ["train", "--out", "{t}/run"], "already holds a run"),
    ("data path missing", ["train", "--data", "{t}/nope.txt"], "nope.txt does not exist"),
    ("data unknown name", ["train", "--data", "nope"], "unknown data set 'nope'"),
    ("data binary file", ["train", "--data", "{t}/binary.bin"], "not a text file"),
    ("data model file", ["train", "--data", "{t}/m.lrnn"], "not a text file"),
    ("data empty file", ["train", "--data", "{t}/empty.txt"], "is empty"),
    ("data folder of binaries", ["train", "--data", "{t}/binaries"], "holds no text files (2 others skipped)"),
    ("data for another task", ["train", "--task", "classify", "--data", "pystdlib"], "serves char-lm"),
    ("zero size", ["train", "--hidden", "0"], "hidden=0"),
    ("negative size", ["train", "--batch", "-4"], "batch=-4"),
    ("seq-len longer than the data", ["train", "--seq-len", "100000"], "no step"),
    ("eval-batch larger than the data", ["train", "--eval-batch", "20000"], "too few for eval_batch=20000"),
    ("seed too large", ["train", "--seed", "99999999999999999999999"], "seed=99999999999999999999999 must be in"),
    ("hidden too large", ["train", "--hidden", "10000000"], "lower --hidden"),
    ("threads too many", ["train", "--threads", "100000"], "threads=100000 is more than 1024"),
    ("steps in e-notation", ["train", "--steps-per-epoch", "1e3"], "'1e3' is not an integer; write it out: 1000"),
    ("classify on fewer examples than a batch", ["train", "--task", "classify", "--data", "digits",
                                                 "--max-examples", "1"], "1 sequence(s), fewer than one batch of 4"),
    ("init-from a corrupt checkpoint", ["train", "--init-from", "{t}/cfg_list"], "is corrupt: its config"),
    ("init-from a model file", ["train", "--init-from", "{t}/m.lrnn"], "model file, not a run directory"),
    ("resume missing", ["train", "--resume", "{t}/nope"], "does not exist"),
    ("resume a model file", ["train", "--resume", "{t}/m.lrnn"], "model file, not a run directory"),
    ("resume with settings", ["train", "--resume", "{t}/run", "--hidden", "9"], "drop --hidden"),
    ("resume a foreign checkpoint", ["train", "--resume", "{t}/foreign_cfg"], "another leanrnn version"),
    ("resume a corrupt checkpoint", ["train", "--resume", "{t}/corrupt"], "corrupt"),
    ("resume without checkpoint.pt", ["train", "--resume", "{t}/only_best"], "leanrnn train --init-from"),
    # eval
    ("eval missing", ["eval", "{t}/nope"], "does not exist"),
    ("eval a model file", ["eval", "{t}/m.lrnn"], "is a .lrnn model file"),
    ("eval a text file", ["eval", "{t}/text.txt"], "is a file, not a run directory"),
    ("eval an empty folder", ["eval", "{t}/dir"], "holds no run"),
    ("eval a checkpoint file", ["eval", "{t}/run/best.pt"], "give its folder"),
    ("eval older settings", ["eval", "{t}/foreign_cfg"], "another leanrnn version"),
    ("eval older weights", ["eval", "{t}/foreign_w"], "does not fit this leanrnn version"),
    ("eval a config that is a list", ["eval", "{t}/cfg_list"], "is corrupt: its config is not a mapping"),
    ("eval a model that is a list", ["eval", "{t}/model_list"], "is corrupt: its model is not a mapping"),
    ("eval a vocabulary that is a number", ["eval", "{t}/vocab_int"], "is corrupt: its vocab is not a list"),
    ("eval an invalid setting", ["eval", "{t}/lr_nan"], "is corrupt: lr=nan"),
    ("eval weights that contradict the settings", ["eval", "{t}/hidden_x2"], "is corrupt: its weights do not fit"),
    ("eval NaN weights", ["eval", "{t}/nan_w"], "nan_w holds non-finite weights"),
    ("eval the last checkpoint of a run without one", ["eval", "{t}/only_best", "--checkpoint", "checkpoint"],
     "use --checkpoint best"),
    ("eval threads not a number", ["eval", "{t}/run", "--threads", "x"], "'x' is not an integer"),
    ("eval threads too many", ["eval", "{t}/run", "--threads", "100000"], "more than 1024"),
    # export
    ("export to a folder", ["export", "{t}/run", "-o", "{t}/dir"], "is a directory"),
    ("export to a missing folder", ["export", "{t}/run", "-o", "/nonexistent/dir/m.lrnn"], "mkdir -p"),
    ("export over another file", ["export", "{t}/run", "-o", "{t}/text.txt"], "exists and is not"),
    ("export a model file", ["export", "{t}/m.lrnn", "-o", "{t}/x.lrnn"], "is a .lrnn model file"),
    ("export a missing run", ["export", "{t}/nope", "-o", "{t}/x.lrnn"], "does not exist"),
    ("export under a file", ["export", "{t}/run", "-o", "{t}/text.txt/m.lrnn"], "text.txt is a file, not a folder"),
    ("export where no file can be made", ["export", "{t}/run", "-o", "/proc/m.lrnn"], "cannot create files in /proc"),
    ("export a corrupt checkpoint", ["export", "{t}/model_list", "-o", "{t}/x.lrnn"], "is corrupt"),
    ("export the last checkpoint of a run without one", ["export", "{t}/only_best", "--checkpoint", "checkpoint",
                                                         "-o", "{t}/x.lrnn"], "use --checkpoint best"),
    # inspect
    ("inspect a run", ["inspect", "{t}/run"], "is a run directory, not a model file; export it first: leanrnn export"),
    ("inspect missing", ["inspect", "{t}/nope.lrnn"], "does not exist"),
    ("inspect a folder", ["inspect", "{t}/dir"], "is a directory"),
    ("inspect an empty file", ["inspect", "{t}/empty.txt"], "is empty"),
    ("inspect a text file", ["inspect", "{t}/text.txt"], "text.txt"),
    ("inspect a checkpoint", ["inspect", "{t}/run/best.pt"], "training checkpoint"),
    ("inspect an older format", ["inspect", "{t}/old.lrnn"], "version"),
    ("inspect a device", ["inspect", "/dev/zero"], "/dev/zero is a device or pipe"),
    # bench
    ("bench a run", ["bench", "{t}/run"], "is a run directory"),
    ("bench a binary file", ["bench", "{t}/binary.bin"], "binary.bin"),
    ("bench zero steps", ["bench", "{t}/m.lrnn", "--steps", "0"], "must be > 0"),
    # hw
    ("hw missing", ["hw", "{t}/nope"], "does not exist"),
    ("hw an empty folder", ["hw", "{t}/dir"], "holds no run"),
    ("hw config is a folder", ["hw", "{t}/m.lrnn", "--config", "{t}/dir"], "is a directory"),
    ("hw config empty", ["hw", "{t}/m.lrnn", "--config", "{t}/empty.txt"], "is empty"),
    ("hw config binary", ["hw", "{t}/m.lrnn", "--config", "{t}/binary.bin"], "not a text file"),
    ("hw config unknown key", ["hw", "{t}/m.lrnn", "--config", "{t}/accel_unknown.yaml"], "frob"),
    ("hw config wrong type", ["hw", "{t}/m.lrnn", "--config", "{t}/accel_type.yaml"], "pes"),
    ("hw out is a file", ["hw", "{t}/m.lrnn", "--out", "{t}/text.txt"], "is a file"),
    ("hw negative steps", ["hw", "{t}/m.lrnn", "--steps", "-3"], "must be > 0"),
    # rtl
    ("rtl without a subcommand", ["rtl"], "required"),
    ("rtl generate a run", ["rtl", "generate", "--model", "{t}/run"], "is a run directory"),
    ("rtl generate into a file", ["rtl", "generate", "-o", "{t}/text.txt"], "is a file"),
    ("rtl generate config folder", ["rtl", "generate", "--config", "{t}/dir"], "is a directory"),
    ("rtl generate 8-bit weights", ["rtl", "generate", "--config", "{t}/accel_bits8.yaml"],
     "weight_bits must be 1 or 2"),
    ("rtl generate zero columns", ["rtl", "generate", "--columns", "0"], "must be > 0"),
    ("rtl fixed missing", ["rtl", "fixed", "{t}/nope.lrnn"], "does not exist"),
    ("rtl fixed a run", ["rtl", "fixed", "{t}/run"], "is a run directory"),
    ("rtl report into a file", ["rtl", "report", "-o", "{t}/text.txt"], "is a file"),
    ("rtl fpga scanner chunk", ["rtl", "fpga", "--scan-chunk", "6", "-o", "{t}/f"], "--scan-chunk 6 must be a power"),
    ("rtl fpga state density", ["rtl", "fpga", "--state-density", "0", "-o", "{t}/f"], "--state-density 0.0 must"),
    # plot
    ("plot to .txt", ["plot", "{t}/run", "-o", "{t}/plot.txt"], ".png"),
    ("plot to a folder", ["plot", "{t}/run", "-o", "{t}/dir"], "is a directory"),
    ("plot over a checkpoint", ["plot", "{t}/run", "-o", "{t}/run/best.pt"], ".png"),
    ("plot a run not evaluated", ["plot", "{t}/run", "-o", "{t}/p.png"], "run 'leanrnn eval"),
    ("plot a model file", ["plot", "{t}/m.lrnn", "-o", "{t}/p.png"], "is a .lrnn model file"),
    ("plot a bad evaluation", ["plot", "{t}/badeval", "-o", "{t}/p.png"], "not an evaluation"),
    ("plot over the run's curves", ["plot", "{t}/run", "-o", "{t}/run/curves.png"], "choose a new name"),
    # demo
    ("demo markdown of a model file", ["demo", "--markdown", "{t}/m.lrnn"], "not a JSON written by 'leanrnn demo"),
    # data
    ("data without a subcommand", ["data"], "required"),
    ("data unknown subcommand", ["data", "fetch"], "invalid choice"),
]


@pytest.mark.parametrize("argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_status_2(argv, words, paths, capsys, tmp_path):
    argv = [a.format(t=paths) for a in argv]
    if argv[0] == "train" and "--resume" not in argv:
        argv = argv[:1] + TINY + argv[1:] + ([] if "--out" in argv else ["--out", str(tmp_path / "new" / "run")])
    before = {p: p.stat().st_mtime_ns for p in paths.rglob("*") if p.is_file()}
    code, _, err = _call(argv, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("leanrnn") and "Traceback" not in err, err
    assert words in err, err
    after = {p: p.stat().st_mtime_ns for p in paths.rglob("*") if p.is_file()}
    assert after == before, "a failed command changed or left files"
    assert not (tmp_path / "new").exists(), "a failed train left a run directory"


def test_data_dir_skips_binary_files_and_says_so(paths, tmp_path, capsys):
    d = tmp_path / "text"
    shutil.copytree(paths / "binaries", d)
    (d / "notes.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 80)
    code, out, err = _call(["train", "--data", str(d), "--out", str(tmp_path / "r")] + TINY, capsys)
    assert code == 0, err
    assert "note: skipped 2 file(s)" in out and "best.pt" in out
    vocab = torch.load(tmp_path / "r" / "best.pt", weights_only=True)["vocab"]
    assert set("".join(vocab[1:])) <= set("the quick brown fox jumps over the lazy dog\n")


def test_plot_puts_different_metrics_on_separate_axes(paths, tmp_path, monkeypatch, capsys):
    import matplotlib.figure
    seen = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: seen.append(
        sorted(ax.get_ylabel() for ax in fig.axes)))
    runs = []
    for name, metric, value in (("lm", "bpc", 2.1), ("digits", "accuracy", 0.9)):
        (tmp_path / name).mkdir()
        shutil.copy(paths / "run" / "best.pt", tmp_path / name / "best.pt")
        (tmp_path / name / "eval_test.json").write_text(json.dumps(
            {"metric_name": metric, metric: value, "state_sparsity": 0.5}))
        runs.append(str(tmp_path / name))
    assert _call(["plot", *runs, "-o", str(tmp_path / "s.png")], capsys)[0] == 0
    assert seen == [["test accuracy", "test bpc"]]


@pytest.mark.parametrize("flags, tty, progress", [(["--no-progress"], True, False), ([], False, False),
                                                  ([], True, True), (["--progress"], False, True)])
def test_progress_bar_follows_the_terminal_and_the_flags_on_resume(flags, tty, progress, paths, monkeypatch):
    import leanrnn.train
    seen = {}

    class Recorder:
        def __init__(self, cfg, out, progress=True, **kw):
            seen["progress"] = progress

        def run(self, **kw):
            return {}
    monkeypatch.setattr(leanrnn.train, "Trainer", Recorder)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert main(["train", "--resume", str(paths / "run")] + flags) == 0
    assert seen["progress"] is progress


def test_init_from_a_run_that_has_not_finished_says_so(paths, tmp_path, capsys):
    """A run still training (or stopped early) gives its best epoch so far: the note says how far it got."""
    src = tmp_path / "src"
    shutil.copytree(paths / "run", src)
    cfg = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**cfg, "epochs": 3}))  # 1 of 3 epochs logged
    code, out, _ = _call(["train", "--weights", "ternary", "--init-from", str(src), "--teacher", str(paths / "run"),
                          "--out", str(tmp_path / "ft")] + TINY, capsys)
    assert code == 0
    assert f"--init-from {src} has finished 1 of its 3 epochs" in out
    assert "--teacher" not in out  # the finished one: no note


@pytest.fixture
def demo_runs(monkeypatch):
    """``leanrnn demo`` with its training replaced by a record of the call: the checks before it run."""
    import leanrnn.cli.demo
    calls = []
    monkeypatch.setattr(leanrnn.cli.demo, "run", lambda **kw: calls.append(kw) or {})
    return calls


def _earlier_demo(out: Path, model: Path) -> None:
    """What an earlier demo of another size, length and seed left in ``out``."""
    from leanrnn.cli.demo import _config
    for short in ("fp", "ternary"):
        (out / short).mkdir(parents=True)
        (out / short / "config.json").write_text(json.dumps(_config(short, out, 3, 8, 1).to_dict()))
        shutil.copy(model, out / short / "best.pt")


def _files(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_demo_replaces_an_earlier_demo_s_output_and_nothing_else(paths, tmp_path, capsys, demo_runs):
    out = tmp_path / "again"
    _earlier_demo(out, paths / "run" / "best.pt")
    assert _call(["demo", "--out", str(out), "--steps", "1", "--hidden", "4"], capsys)[0] == 0
    assert len(demo_runs) == 1

    def copied_run(d):
        shutil.copytree(paths / "run", d / "fp")

    def stray_file(d):
        _earlier_demo(d, paths / "run" / "best.pt")
        (d / "ternary" / "precious.txt").write_text("keep me")

    def not_a_model(d):
        d.mkdir()
        (d / "fp.lrnn").write_text("notes")

    def another_model(d):
        d.mkdir()
        shutil.copy(paths / "m.lrnn", d / "ternary.lrnn")
    for make in (copied_run, stray_file, not_a_model, another_model):
        out = tmp_path / make.__name__
        make(out)
        before = _files(out)
        code, _, err = _call(["demo", "--out", str(out), "--steps", "1", "--hidden", "4"], capsys)
        assert code == 2 and err.count("\n") == 1 and "an earlier demo did not write" in err, (make.__name__, err)
        assert _files(out) == before
    assert len(demo_runs) == 1


def test_demo_out_must_not_be_empty(tmp_path, capsys, monkeypatch, demo_runs):
    monkeypatch.chdir(tmp_path)
    code, _, err = _call(["demo", "--out", "", "--steps", "1"], capsys)
    assert code == 2 and "--out is empty" in err and not demo_runs


def test_demo_json_replaces_only_results_a_demo_wrote(paths, tmp_path, capsys, demo_runs):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"steps": 1, "hidden": 4, "batch": 32, "seq_len": 100, "seed": 0, "models": {}}))
    assert _call(["demo", "--out", str(tmp_path / "d"), "--json", str(results)], capsys)[0] == 0
    settings = paths / "run" / "config.json"
    other = tmp_path / "other.json"
    other.write_text('{"mine": 1}')
    for victim in (settings, other):
        before = victim.read_bytes()
        code, _, err = _call(["demo", "--out", str(tmp_path / "d"), "--json", str(victim)], capsys)
        assert code == 2 and "is not a file this command wrote" in err, err
        assert victim.read_bytes() == before
    assert len(demo_runs) == 1


def _evaluated_copy(paths: Path, run: Path, evaluation: str) -> Path:
    shutil.copytree(paths / "run", run)
    (run / "eval_test.json").write_text(evaluation)
    return run


def test_plot_replaces_only_a_plot_it_wrote(paths, tmp_path, capsys):
    run = _evaluated_copy(paths, tmp_path / "r", json.dumps({"metric_name": "bpc", "bpc": 2.0, "state_sparsity": 0.5}))
    for suffix in (".png", ".svg", ".pdf"):
        out = tmp_path / f"s{suffix}"
        assert _call(["plot", str(run), "-o", str(out)], capsys)[0] == 0
        assert _call(["plot", str(run), "-o", str(out)], capsys)[0] == 0  # its own plot: replaced
    photo = tmp_path / "photo.png"
    shutil.copy(run / "curves.png", photo)
    for victim in (run / "curves.png", photo):
        before = victim.read_bytes()
        code, _, err = _call(["plot", str(run), "-o", str(victim)], capsys)
        assert code == 2 and "choose a new name" in err, err
        assert victim.read_bytes() == before


@pytest.mark.parametrize("value", ["null", "NaN", "Infinity", '"2.0"', "true"])
def test_plot_refuses_an_evaluation_without_a_finite_metric(value, paths, tmp_path, capsys):
    run = _evaluated_copy(paths, tmp_path / "r", f'{{"metric_name": "bpc", "bpc": {value}, "state_sparsity": 0.5}}')
    code, _, err = _call(["plot", str(run), "-o", str(tmp_path / "s.png")], capsys)
    assert code == 2 and "holds no finite bpc" in err, err
    assert not (tmp_path / "s.png").exists()


def test_demo_markdown_of_a_json_with_a_list_of_models(tmp_path, capsys):
    f = tmp_path / "demo.json"
    f.write_text(json.dumps({"steps": 1, "hidden": 4, "batch": 32, "seq_len": 100, "models": [1, 2]}))
    code, _, err = _call(["demo", "--markdown", str(f)], capsys)
    assert code == 2 and "is not a JSON written by 'leanrnn demo --json'" in err, err


def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path, capsys):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)

    def hung(*_):
        raise TimeoutError("the command opened the pipe and waited")
    old = signal.signal(signal.SIGALRM, hung)
    try:
        for argv in (["inspect", str(pipe)], ["eval", str(pipe)], ["train", "--recipe", str(pipe)],
                     ["demo", "--markdown", str(pipe)]):
            signal.alarm(20)
            code, _, err = _call(argv, capsys)
            signal.alarm(0)
            assert code == 2 and "is a device or pipe" in err, (argv, err)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_train_out_must_not_be_empty(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _call(["train", "--out", ""] + TINY, capsys)
    assert code == 2 and "--out is empty" in err, err
    assert not any(tmp_path.iterdir())


def test_resume_with_patience_keeps_a_corrupt_config_json_and_rewrites_a_missing_one(paths, tmp_path, capsys):
    run = tmp_path / "r"
    shutil.copytree(paths / "run", run)
    for bad in ("{not json", "[1, 2]"):
        (run / "config.json").write_text(bad)
        code, _, err = _call(["train", "--resume", str(run), "--patience", "2", "--no-progress"], capsys)
        assert code == 2 and "config.json is not a JSON mapping" in err, err
        assert (run / "config.json").read_text() == bad
    (run / "config.json").unlink()
    assert _call(["train", "--resume", str(run), "--patience", "2", "--no-progress"], capsys)[0] == 0
    assert json.loads((run / "config.json").read_text())["patience"] == 2


def test_eval_refuses_data_whose_vocabulary_changed_since_training(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 80)
    run = tmp_path / "r"
    assert main(["train", "--data", str(text), "--out", str(run)] + TINY) == 0
    for changed in ("the quick brown fox jumps over the lazy dog! XYZ\n" * 80, "the quick brown fox\n" * 160):
        text.write_text(changed)
        code, _, err = _call(["eval", str(run)], capsys)
        assert code == 2 and err.count("\n") == 1 and f"the data of {run} has changed since it was trained" in err, err
        assert not (run / "eval_test.json").exists()


def test_positive_takes_an_upper_bound():
    import argparse

    from leanrnn.cli.checks import positive
    assert positive(int, most=10)("10") == 10
    with pytest.raises(argparse.ArgumentTypeError, match="more than 10"):
        positive(int, most=10)("11")
    with pytest.raises(argparse.ArgumentTypeError, match="'x' is not a number"):
        positive(float)("x")
