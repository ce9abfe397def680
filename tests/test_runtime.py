import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from _models import trained_lm
from leanrnn.export import (
    ModelFormatError,
    pack_codes,
    read_lrnn,
    unpack_codes,
    write_lrnn,
)
from leanrnn.export.exporter import model_to_lrnn, summary
from leanrnn.export.format import checksum
from leanrnn.runtime import Model
from leanrnn.tasks import SeqClassifier
from leanrnn.train import evaluate_lm


def _trained_lm(weights, bn, sparsity, embed=8, layers=1, V=12, H=16):
    return trained_lm(V=V, H=H, embed=embed, layers=layers, steps=6, weights=weights, batch_norm=bn,
                      state_sparsity=sparsity)


def _export(model, tmp_path, task="char-lm", vocab=None):
    V = model.decoder.weight.shape[0] if hasattr(model, "decoder") else None
    vocab = vocab if vocab is not None else (None if task == "classify" else [chr(97 + i) for i in range(V)])
    header, tensors = model_to_lrnn(model, {"task": task}, vocab)
    path = tmp_path / "m.lrnn"
    write_lrnn(path, header, tensors)
    return path


@pytest.mark.parametrize("mode, version, per", [("binary", 3, 8), ("ternary", 3, 5), ("ternary", 2, 4),
                                                 ("binary", 1, 8)])
def test_pack_round_trip(mode, version, per):
    """Ternary codes pack base 3 (five per byte) from format version 3, in 2-bit fields before."""
    rng = np.random.default_rng(0)
    vals = [-1, 1] if mode == "binary" else [-1, 0, 1]
    codes = rng.choice(vals, size=(5, 37)).astype(np.int8)
    packed = pack_codes(codes, mode, version)
    assert packed.shape == (5, -(-37 // per))
    assert np.array_equal(unpack_codes(packed, 37, mode, version), codes)
    if (mode, version) == ("ternary", 3):  # first code in the lowest digit: -1 0 +1 0 0 -> 2 + 1 * 9
        assert pack_codes(np.int8([[-1, 0, 1, 0, 0, 1]]), mode)[0].tolist() == [11, 1]
        assert packed.max() < 243


@pytest.mark.parametrize("weights", ["fp", "binary", "ternary"])
@pytest.mark.parametrize("bn, sparsity", [(False, 0.0), (True, 0.0), (True, 0.8), (False, 0.8)])
def test_runtime_equals_torch_eval(tmp_path, weights, bn, sparsity):
    model = _trained_lm(weights, bn, sparsity, layers=2)
    rt = Model.load(_export(model, tmp_path))
    ids = torch.randint(0, 12, (20, 3), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, (h, c) = model(ids)
    out, state = rt.run(ids.numpy())
    assert np.allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)
    assert np.allclose(state.h[-1], h[-1].numpy(), rtol=1e-4, atol=1e-6)
    if sparsity:
        zeros = [float((s == 0).mean()) for s in state.h]
        assert max(zeros) > 0 and all(0 < s <= 1 for s in state.sparsity())


def test_one_hot_and_classifier(tmp_path):
    model = _trained_lm("ternary", True, 0.5, embed=0)
    rt = Model.load(_export(model, tmp_path))
    ids = torch.randint(0, 12, (15, 2))
    with torch.no_grad():
        ref, _ = model(ids)
    assert np.allclose(rt.run(ids.numpy())[0], ref.numpy(), rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    clf = SeqClassifier(3, 16, 5, weights="binary", batch_norm=True, state_sparsity=0.5)
    clf(torch.randn(4, 10, 3))
    clf.eval()
    x = torch.randn(4, 10, 3)
    with torch.no_grad():
        ref = clf(x).numpy()
    rt = Model.load(_export(clf, tmp_path, task="classify"))
    assert np.allclose(rt.classify(x.numpy()), ref, rtol=1e-4, atol=1e-5)


def test_runtime_metric_equals_torch_eval(tmp_path):
    model = _trained_lm("ternary", True, 0.7)
    ids = torch.randint(0, 12, (700,), generator=torch.Generator().manual_seed(2)).to(torch.int32)
    ref = evaluate_lm(model, ids, batch=4, seq_len=25)
    got = Model.load(_export(model, tmp_path)).evaluate_lm(ids.numpy(), batch=4, seq_len=25)
    assert got["bits_per_token"] == pytest.approx(ref["bits_per_token"], rel=1e-5)
    assert got["accuracy"] == ref["accuracy"] and got["tokens"] == ref["tokens"]


def test_generate_and_bad_inputs(tmp_path):
    rt = Model.load(_export(_trained_lm("ternary", True, 0.5), tmp_path))
    text = rt.generate("abc", n=20, seed=3)
    assert len(text) == 20 and set(text) <= set("abcdefghijkl")
    assert text == rt.generate("abc", n=20, seed=3)
    with pytest.raises(ValueError, match="token ids"):
        rt.step(99)
    with pytest.raises(ValueError, match="temperature"):
        rt.generate("a", temperature=-1)
    greedy = rt.generate("abc", n=6, temperature=0)
    y, state = rt.run(rt.encode("abc"))
    nxt = [int(y[-1].argmax())]
    for _ in range(5):
        nxt.append(int(rt.step(nxt[-1], state)[0].argmax()))
    assert greedy == rt.decode(nxt) == rt.generate("abc", n=6, temperature=0, seed=9)
    with pytest.raises(ValueError, match=r"not in the vocabulary, first 'z'.*unknown="):
        rt.encode("abz")
    assert rt.encode("abz", unknown="a") == [0, 1, 0]
    with pytest.raises(ValueError, match="not a token"):
        rt.encode("abz", unknown="<unk>")


def test_file_sizes_and_summary(tmp_path):
    for weights, per in (("ternary", 5), ("binary", 8)):  # codes per byte: base 3 and 1 bit
        model = _trained_lm(weights, False, 0.0, H=40)
        header, tensors = read_lrnn(_export(model, tmp_path))
        fp32 = sum(p.numel() * 4 for n, p in model.lstm.named_parameters() if n.startswith("weight_"))
        packed = tensors["l0.w_ih"].nbytes + tensors["l0.w_hh"].nbytes
        assert packed * 4 * per == fp32  # 4H = 160 codes fill whole bytes
        if weights == "ternary":
            assert "20.0x smaller" in summary(tmp_path / "m.lrnn")
    assert "32.0x smaller" in summary(tmp_path / "m.lrnn")


def test_corrupt_files_are_refused(tmp_path):
    path = _export(_trained_lm("ternary", True, 0.5), tmp_path)
    data = path.read_bytes()
    (tmp_path / "trunc.lrnn").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="not a readable"):
        Model.load(tmp_path / "trunc.lrnn")
    flipped = bytearray(data)
    flipped[-3] ^= 0x40
    (tmp_path / "flip.lrnn").write_bytes(bytes(flipped))
    with pytest.raises(ModelFormatError, match="checksum"):
        Model.load(tmp_path / "flip.lrnn")
    header, tensors = read_lrnn(path)
    future = dict(header, version=99)
    future["checksum"] = checksum(future, tensors)
    save_file(tensors, str(tmp_path / "v.lrnn"), metadata={"leanrnn": json.dumps(future)})
    with pytest.raises(ModelFormatError, match="format version 99"):
        Model.load(tmp_path / "v.lrnn")
    bad = dict(tensors)
    bad["l0.w_hh"] = np.full_like(tensors["l0.w_hh"], 0xFF)  # 0b11 codes are invalid
    write_lrnn(tmp_path / "codes.lrnn", header, bad)
    with pytest.raises(ModelFormatError, match="invalid value"):
        Model.load(tmp_path / "codes.lrnn")
    bad = dict(tensors)
    bad["l0.s_ih"] = tensors["l0.s_ih"][:, :-1].copy()
    write_lrnn(tmp_path / "shape.lrnn", header, bad)
    with pytest.raises(ModelFormatError, match="l0.s_ih"):
        Model.load(tmp_path / "shape.lrnn")


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return Model.load(_export(_trained_lm("ternary", True, 0.5), tmp_path_factory.mktemp("lm")))


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    torch.manual_seed(0)
    m = SeqClassifier(1, 16, 5, weights="binary", batch_norm=True, state_sparsity=0.5)
    m(torch.randn(4, 10, 1))
    return Model.load(_export(m.eval(), tmp_path_factory.mktemp("clf"), task="classify"))


BAD_CALLS = [  # (model, call, exception, words of the one-line message)
    ("clf", lambda m: m.classify(np.zeros((64, 1), np.float32)), ValueError,
     r"\(N, T, 1\).*got shape \(64, 1\).*x\[None\]"),
    ("clf", lambda m: m.classify(np.zeros((2, 64, 3), np.float32)), ValueError, r"\(N, T, 1\).*\(2, 64, 3\)"),
    ("clf", lambda m: m.classify(np.zeros((2, 64, 0), np.float32)), ValueError, r"\(N, T, 1\).*\(2, 64, 0\)"),
    ("clf", lambda m: m.classify(np.zeros((0, 64, 1), np.float32)), ValueError, r"N, T >= 1"),
    ("clf", lambda m: m.classify(np.full((2, 5, 1), np.nan, np.float32)), ValueError, "finite"),
    ("clf", lambda m: m.classify(np.full((2, 5, 1), 1e300)), ValueError, "finite"),
    ("clf", lambda m: m.classify([[[1.0]], [[1.0], [2.0]]]), ValueError, "ragged"),
    ("clf", lambda m: m.classify(np.array([[["a"]]])), TypeError, "real numbers"),
    ("clf", lambda m: m.step(np.zeros(3, np.float32)), ValueError, r"\(1,\) or \(B, 1\).*\(3,\)"),
    ("clf", lambda m: m.run(np.zeros((5, 2, 4), np.float32)), ValueError, r"\(T, B, 1\).*\(5, 2, 4\)"),
    ("clf", lambda m: m.generate("a"), ValueError, "needs a language model"),
    ("clf", lambda m: m.evaluate_lm([1, 2, 3]), ValueError, "needs a language model"),
    ("lm", lambda m: m.classify(np.zeros((2, 5, 12), np.float32)), ValueError, "language model"),
    ("lm", lambda m: m.run([]), ValueError, r"\(T,\) or \(T, B\).*got shape \(0,\)"),
    ("lm", lambda m: m.run(np.zeros((4, 0), np.int64)), ValueError, r"got shape \(4, 0\)"),
    ("lm", lambda m: m.run([[[1]]]), ValueError, r"got shape \(1, 1, 1\)"),
    ("lm", lambda m: m.run([1, 2, 12]), ValueError, r"in \[0, 12\), got 12"),
    ("lm", lambda m: m.run([1, -1]), ValueError, r"in \[0, 12\), got -1"),
    ("lm", lambda m: m.run([1.0, 2.0]), TypeError, "must be integers"),
    ("lm", lambda m: m.step(99), ValueError, r"token ids must be in \[0, 12\), got 99"),
    ("lm", lambda m: m.step(True), TypeError, "must be integers"),
    ("lm", lambda m: m.step("a"), TypeError, "must be integers"),
    ("lm", lambda m: m.step([]), ValueError, r"shape \(0,\)"),
    ("lm", lambda m: m.step([1, 2], m.initial_state(3)), ValueError, r"3 streams, the input 2"),
    ("lm", lambda m: m.step(1, "state"), TypeError, "State"),
    ("lm", lambda m: m.generate("a", n=-5), ValueError, "n must be an integer >= 0, got -5"),
    ("lm", lambda m: m.generate("a", n=2.5), TypeError, "n must be an integer"),
    ("lm", lambda m: m.generate("a", temperature=-0.5), ValueError, "temperature"),
    ("lm", lambda m: m.generate("a", temperature=float("nan")), ValueError, "temperature"),
    ("lm", lambda m: m.generate("a", temperature="hot"), TypeError, "temperature"),
    ("lm", lambda m: m.generate(["a"]), TypeError, "str prompt"),
    ("lm", lambda m: m.generate("a", seed=-1), ValueError, "seed"),
    ("lm", lambda m: m.evaluate_lm(np.arange(5) % 12, batch=4), ValueError, r"N >= 2 \* batch.*batch 4"),
    ("lm", lambda m: m.evaluate_lm(np.arange(40) % 12, batch=0), ValueError, "batch must be an integer >= 1"),
    ("lm", lambda m: m.evaluate_lm(np.arange(40) % 12, seq_len=0), ValueError, "seq_len"),
    ("lm", lambda m: m.evaluate_lm(np.arange(40), batch=2), ValueError, r"\[0, 12\), got 12"),
    ("lm", lambda m: m.evaluate_lm(np.zeros((40, 2), np.int64)), ValueError, r"got shape \(40, 2\)"),
    ("lm", lambda m: m.initial_state(0), ValueError, "batch must be an integer >= 1"),
    ("lm", lambda m: m.initial_state(2.0), TypeError, "batch must be an integer"),
    ("lm", lambda m: m.encode(5), TypeError, "str"),
]


@pytest.mark.parametrize("which, call, exc, words", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_bad_calls_raise_one_clear_line(lm, clf, which, call, exc, words):
    m = lm if which == "lm" else clf
    with pytest.raises(exc, match=words) as e:
        call(m)
    assert "\n" not in str(e.value)


def test_states_cannot_be_broken_and_foreign_ones_are_refused(lm, clf):
    """A state owns its buffers: its arrays cannot be swapped or resized, its counters not overwritten,
    ``t`` takes integers >= 0 only, and a state of another batch or model shape is refused before
    any kernel runs."""
    state = lm.initial_state(2)
    with pytest.raises(TypeError):
        state.h[0] = np.zeros((2, 15), np.float32)
    with pytest.raises(AttributeError):
        state.c.pop()
    with pytest.raises(AttributeError):
        state.zeros = [0]
    with pytest.raises(ValueError, match="state.t"):
        state.t = -1
    with pytest.raises(ValueError, match="state.t"):
        state.t = 1.5
    state.zeros[0] = 99  # a copy: the counters stay the kernel's
    assert state.zeros[0] == 0
    lm.step([1, 2], state)
    before = [a.copy() for a in state.h]
    for other, words in ((lm.initial_state(3), r"3 streams.*initial_state\(2\)"),
                         (clf.initial_state(2), r"another shape.*initial_state\(2\)")):
        with pytest.raises(ValueError, match=words):
            lm.step([1, 2], other)
        with pytest.raises(ValueError, match=words.replace("2", "1")):
            lm.step(1, other)
    assert all(np.array_equal(a, b) for a, b in zip(state.h, before))


def test_valid_calls_still_work_and_sparsity_is_plain_floats(lm, clf):
    assert all(np.isnan(s) and type(s) is float for s in lm.initial_state().sparsity())
    y, state = lm.run(np.array([1, 2, 3], np.int32))
    assert y.shape == (3, 12) and lm.run([[1, 2], [3, 4]])[0].shape == (2, 2, 12)
    assert np.array_equal(lm.step(np.int64(1))[0], lm.run([1])[0][0])
    assert all(type(s) is float and 0 <= s <= 1 for s in state.sparsity())
    assert lm.generate("", n=0) == "" and len(lm.generate("ab", n=np.int64(3))) == 3
    r = lm.evaluate_lm(np.arange(40) % 12, batch=2, seq_len=7)
    assert r["tokens"] == 38 and all(type(s) is float for s in r["state_sparsity"])
    x = np.random.default_rng(0).random((3, 6, 1))  # float64 and int inputs are converted
    assert clf.classify(x).shape == (3, 5) and clf.classify(x.astype(int)).shape == (3, 5)
    assert np.allclose(clf.run(x.transpose(1, 0, 2))[0][-1], clf.classify(x), atol=1e-6)
    assert clf.step([0.5])[0].shape == (5,)


def test_nan_in_the_gates_does_not_raise_inside_compiled_code():
    """Finite inputs through huge (finite) scales can overflow to inf - inf = NaN in the gates; the
    compiled code must carry on (numpy's error model), not raise ZeroDivisionError."""
    from leanrnn.runtime import kernels
    H = 3
    acc = np.full(4 * H, np.nan, np.float32)
    ones, zeros = np.ones(4 * H, np.float32), np.zeros(H, np.float32)
    c, h = zeros.copy(), np.empty(H, np.float32)
    kernels._gates(acc, acc, ones, ones, ones, c, False, zeros, zeros, np.float32(0.1), h)
    assert h.shape == (H,) and np.isnan(c).all()


def _overflowing(part):
    """``(header, tensors)`` whose finite values make a step's sums pass float32's range."""
    top = np.finfo(np.float32).max
    if part == "preprocess":
        torch.manual_seed(0)
        header, tensors = model_to_lrnn(SeqClassifier(1, 8, 5, weights="binary").eval(),
                                        {"task": "classify", "data": "digits"}, None)
        header["preprocess"].update(scale=3e38, raw_max=3e38)
        return header, tensors
    header, tensors = model_to_lrnn(_trained_lm("fp", False, 0.0), {"task": "char-lm"}, list("abcdefghijkl"))
    if part == "out.weight":  # every term of h @ W.T + b may share the bias's sign
        tensors["out.weight"] = np.full_like(tensors["out.weight"], top)
        tensors["out.bias"] = np.full(12, top, np.float32)
    else:
        tensors[part] = np.full_like(tensors[part], 3e38)
    return header, tensors


@pytest.mark.parametrize("part, words", [("out.weight", "'out.weight'.*a logit"), ("l0.w_ih", "'l0.w_ih'.*W_ih x"),
                                         ("l0.w_hh", "'l0.w_hh'.*W_hh h"),
                                         ("preprocess", r"preprocess: scale 3e\+38 x raw_max")])
def test_sums_that_overflow_float32_are_refused_at_load(tmp_path, capsys, part, words):
    """Finite weights of 3e38 pass the format's checks but overflow every step to inf and NaN: the load
    refuses them in one line naming the tensor, before a kernel or a numpy overflow warning runs."""
    import warnings

    from leanrnn.cli import main
    header, tensors = _overflowing(part)
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModelFormatError, match=f"m.lrnn: .*{words}.*float32") as e:
            Model.load(tmp_path / "m.lrnn")
        assert "\n" not in str(e.value)
        assert main(["bench", str(tmp_path / "m.lrnn"), "--steps", "3"]) == 2
    assert "float32's range" in capsys.readouterr().err


def test_bench_steps_have_an_upper_bound(capsys):
    from leanrnn.cli import main
    with pytest.raises(SystemExit) as e:
        main(["bench", "m.lrnn", "--steps", "1000000000"])
    assert e.value.code == 2 and "at most 1000000" in capsys.readouterr().err


def test_model_from_exporter_output_is_validated():
    header, tensors = model_to_lrnn(_trained_lm("binary", False, 0.0), {"task": "char-lm"}, list("abcdefghijkl"))
    assert Model(header, tensors).run([1, 2])[0].shape == (2, 12)
    with pytest.raises(ModelFormatError, match="vocab"):
        Model(dict(header, vocab=list("abc")), tensors)


def test_bench_checks_steps_and_reports_plain_floats(tmp_path):
    from leanrnn.runtime.bench import bench_model
    path = _export(_trained_lm("binary", False, 0.5, layers=2), tmp_path)
    r = bench_model(str(path), steps=5)
    assert r["seconds_per_step"] > 0 and [type(s) for s in r["state_sparsity"]] == [float, float]
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        bench_model(str(path), steps=0)


def test_runtime_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import leanrnn.runtime, leanrnn.export.format\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
