import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leanrnn.export import ModelFormatError, pack_codes, read_lrnn, unpack_codes, write_lrnn
from leanrnn.export.exporter import model_to_lrnn, summary
from leanrnn.export.format import checksum
from safetensors.numpy import save_file
from leanrnn.runtime import Model
from leanrnn.tasks import LanguageModel, SeqClassifier
from leanrnn.train import evaluate_lm


def _trained_lm(weights, bn, sparsity, embed=8, layers=1, V=12, H=16):
    torch.manual_seed(0)
    m = LanguageModel(V, H, num_layers=layers, embed_size=embed, weights=weights, batch_norm=bn,
                      state_sparsity=sparsity)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(6):  # moves BN statistics and pruning thresholds off their initial values
        logits, _ = m(torch.randint(0, V, (9, 8)))
        loss = logits.logsumexp(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


def _export(model, tmp_path, task="char-lm", vocab=None):
    V = model.decoder.weight.shape[0] if hasattr(model, "decoder") else None
    vocab = vocab if vocab is not None else (None if task == "classify" else [chr(97 + i) for i in range(V)])
    header, tensors = model_to_lrnn(model, {"task": task}, vocab)
    path = tmp_path / "m.lrnn"
    write_lrnn(path, header, tensors)
    return path


@pytest.mark.parametrize("mode", ["binary", "ternary"])
def test_pack_round_trip(mode):
    rng = np.random.default_rng(0)
    vals = [-1, 1] if mode == "binary" else [-1, 0, 1]
    codes = rng.choice(vals, size=(5, 37)).astype(np.int8)
    packed = pack_codes(codes, mode)
    assert packed.shape == (5, -(-37 * (1 if mode == "binary" else 2) // 8))
    assert np.array_equal(unpack_codes(packed, 37, mode), codes)


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
        rt.generate("a", temperature=0)


def test_file_sizes_and_summary(tmp_path):
    for weights, ratio in (("ternary", 16), ("binary", 32)):
        model = _trained_lm(weights, False, 0.0, H=32)
        header, tensors = read_lrnn(_export(model, tmp_path))
        fp32 = sum(p.numel() * 4 for n, p in model.lstm.named_parameters() if n.startswith("weight_"))
        packed = tensors["l0.w_ih"].nbytes + tensors["l0.w_hh"].nbytes
        assert packed * ratio == fp32
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
def valid_bytes(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    return _export(_trained_lm("ternary", True, 0.5), d).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_never_crash_or_load_garbage(valid_bytes, tmp_path, data):
    b = bytearray(valid_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        i = data.draw(st.integers(0, len(b) - 1))
        if kind == "flip":
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            b[i] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del b[i:]
        else:
            b[i:i] = bytes(data.draw(st.binary(min_size=1, max_size=8)))
        if not b:
            b = bytearray(b"\0")
    p = tmp_path / "f.lrnn"
    p.write_bytes(bytes(b))
    try:
        m = Model.load(p)
    except ModelFormatError:
        return
    # A mutation that still loads must have left every tensor and the header intact.
    h, t = read_lrnn(p)
    p.write_bytes(valid_bytes)
    h0, t0 = read_lrnn(p)
    assert h == h0 and t.keys() == t0.keys() and all(np.array_equal(t[k], t0[k]) for k in t)
    assert m.task == "char-lm"


def test_runtime_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import leanrnn.runtime, leanrnn.export.format\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
