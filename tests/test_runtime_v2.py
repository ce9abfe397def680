"""Runtime v2: time-independent normalization and weight normalization, the compact file, input
preprocessing, multi-stream batches, zero-mask traces, the typed spec and the gate approximations."""
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from _models import trained_lm
from leanrnn.export import ModelFormatError, pack_codes, read_lrnn, unpack_codes, write_lrnn
from leanrnn.export.exporter import model_to_lrnn, summary
from leanrnn.export.format import checksum
from leanrnn.export.spec import LayerSpec, ModelSpec, read_spec
from leanrnn.runtime import Model
from leanrnn.tasks import LanguageModel, SeqClassifier
from leanrnn.train import evaluate_lm

V = 12
VOCAB = [chr(97 + i) for i in range(V)]


def _lm(weights, layers=1, H=16, embed=8, **kw):
    return trained_lm(V=V, H=H, embed=embed, layers=layers, steps=6, weights=weights, **kw)


def _load(model, tmp_path, compact=False, config=None):
    header, tensors = model_to_lrnn(model, config or {"task": "char-lm"}, VOCAB if config is None else None,
                                    compact=compact)
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    return Model.load(tmp_path / "m.lrnn")


NORMS = {"shared BN": dict(batch_norm=True, bn_stats="shared"), "weight norm": dict(weight_norm=True),
         "none": {}}


@pytest.mark.parametrize("weights", ["fp", "binary", "ternary"])
@pytest.mark.parametrize("norm", list(NORMS))
def test_time_independent_models_equal_torch_eval_with_one_row_tables(tmp_path, weights, norm):
    model = _lm(weights, layers=2, state_sparsity=0.6, **NORMS[norm])
    rt = _load(model, tmp_path)
    assert all(L.steps == 1 for L in rt.spec.layers)  # per-gate vectors, nothing per step
    ids = torch.randint(0, V, (40, 3), generator=torch.Generator().manual_seed(1))  # past any training length
    with torch.no_grad():
        ref, _ = model(ids)
    out, state = rt.run(ids.numpy())
    assert np.allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)
    assert 0 < state.sparsity()[0] < 1


def test_compact_file_is_smaller_and_its_metric_stays_within_0_005_bits(tmp_path):
    model = _lm("ternary", H=32, batch_norm=True, bn_stats="shared", state_sparsity=0.7)
    ids = torch.randint(0, V, (1200,), generator=torch.Generator().manual_seed(2))
    ref = evaluate_lm(model, ids, batch=4, seq_len=25)["bits_per_token"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    exact, compact = _load(model, tmp_path / "a"), _load(model, tmp_path / "b", compact=True)
    assert exact.evaluate_lm(ids.numpy(), 4, 25)["bits_per_token"] == pytest.approx(ref, rel=1e-5)
    got = compact.evaluate_lm(ids.numpy(), 4, 25)["bits_per_token"]
    assert abs(got - ref) < 0.005 and got != ref
    assert compact.spec.output.int8 and compact.spec.input.int8
    _, tensors = read_lrnn(tmp_path / "b" / "m.lrnn")
    assert tensors["out.weight"].dtype == np.int8 and tensors["l0.s_ih"].dtype == np.float16
    size = lambda d: (tmp_path / d / "m.lrnn").stat().st_size  # noqa: E731
    assert size("b") < 0.75 * size("a")
    ratio = lambda d: float(summary(tmp_path / d / "m.lrnn").split("(")[-1].split("x")[0])  # noqa: E731
    assert ratio("b") > ratio("a") > 1


@pytest.mark.parametrize("H, norm, ratio", [(256, dict(weight_norm=True), 12),
                                             (1000, dict(batch_norm=True, bn_stats="shared"), 14)])
def test_whole_file_ratio_to_the_fp32_twin(tmp_path, H, norm, ratio):
    """Compact, ternary codes base 3: the whole file against the same file in float32, at the demo's
    shape (embedding 64, hidden 256, ~100 characters, weight norm) and at hidden 1000."""
    torch.manual_seed(0)
    m = LanguageModel(98, H, embed_size=64, weights="ternary", **norm).eval()
    header, tensors = model_to_lrnn(m, {"task": "char-lm"}, [str(i) for i in range(98)], compact=True)
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    line = summary(tmp_path / "m.lrnn").splitlines()[-1]
    size, twin = (int(s.replace(",", "")) for s in line.split()[2:6:3])
    assert size == (tmp_path / "m.lrnn").stat().st_size
    assert twin / size >= ratio, line


def test_classifier_file_carries_its_preprocessing(tmp_path):
    torch.manual_seed(0)
    clf = SeqClassifier(1, 16, 10, weights="ternary", batch_norm=True, bn_stats="shared")
    clf(torch.rand(4, 64, 1))
    clf.eval()
    rt = _load(clf, tmp_path, config={"task": "classify", "data": "digits", "permute": True})
    p = rt.header["preprocess"]
    assert p["scale"] == 1 / 16 and p["raw_max"] == 16 and sorted(p["order"]) == list(range(64))
    raw = np.random.default_rng(0).integers(0, 17, (3, 64, 1))
    with pytest.raises(ValueError, match=r"reach 16.*digits.*model.preprocess\(raw\)"):
        rt.classify(raw)
    x = rt.preprocess(raw)
    assert np.allclose(x, raw[:, p["order"]] / 16.0)
    with torch.no_grad():
        ref = clf(torch.from_numpy(x)).numpy()
    assert np.allclose(rt.classify(x), ref, rtol=1e-4, atol=1e-5)
    plain = _load(clf, tmp_path, config={"task": "classify"})
    assert "preprocess" not in plain.header
    with pytest.raises(ValueError, match="names no input preprocessing"):
        plain.preprocess(raw)


def test_batches_of_streams_equal_single_streams(tmp_path):
    rt = _load(_lm("ternary", layers=2, batch_norm=True, state_sparsity=0.8), tmp_path)
    ids = np.random.default_rng(0).integers(0, V, (30, 5))
    out, state = rt.run(ids)
    for b in range(5):
        single, s1 = rt.run(ids[:, b])
        assert np.allclose(single, out[:, b], atol=1e-6)
        assert np.array_equal(s1.h[-1][0], state.h[-1][b])
    st = rt.initial_state(5)
    stepped = np.stack([rt.step(ids[t], st)[0] for t in range(30)])
    assert np.allclose(stepped, out, atol=1e-6)


def test_zero_mask_trace_is_the_state_fed_back(tmp_path):
    rt = _load(_lm("ternary", layers=2, state_sparsity=0.8), tmp_path)
    ids = np.arange(20) % V
    masks, xmask = rt.trace_zero_masks(ids)
    state, fed = rt.initial_state(), []
    for t in ids:
        fed.append([h[0] != 0 for h in state.h])
        rt.step(int(t), state)
    for k in range(2):
        assert np.array_equal(masks[k], np.stack([f[k] for f in fed]))
    assert xmask.shape == (20, 8) and not masks[0][0].any() and masks[0][1:].any()
    with pytest.raises(ValueError, match="one sequence"):
        rt.trace_zero_masks(ids.reshape(10, 2))


def test_typed_spec_of_a_file(tmp_path):
    _load(_lm("binary", layers=2, batch_norm=True), tmp_path)
    spec = read_spec(tmp_path / "m.lrnn")
    assert isinstance(spec, ModelSpec) and all(isinstance(L, LayerSpec) for L in spec.layers)
    L0 = spec.layers[0]
    assert L0.w_ih.dtype == np.int8 and L0.w_ih.shape == (8, 64) and set(np.unique(L0.w_hh)) <= {-1, 1}
    assert L0.s_ih.shape == (L0.steps, 64) and L0.norm_c and spec.num_outputs == V and spec.is_lm


@pytest.mark.parametrize("version", [1, 2])
def test_files_of_earlier_versions_still_load(tmp_path, version):
    """Versions 1 and 2 pack ternary codes in 2-bit fields (four per byte), version 3 base 3 (five)."""
    m = _load(_lm("ternary", layers=2), tmp_path)
    header, tensors = read_lrnn(tmp_path / "m.lrnn")
    old = dict(header, version=version)
    t = {k: pack_codes(unpack_codes(a, 64, "ternary"), "ternary", version) if a.dtype == np.uint8 else a
         for k, a in tensors.items()}
    assert t["l0.w_hh"].shape == (16, 16) and tensors["l0.w_hh"].shape == (16, 13)
    old["checksum"] = checksum(old, t)
    save_file(t, str(tmp_path / "old.lrnn"), metadata={"leanrnn": json.dumps(old)})
    assert np.array_equal(Model.load(tmp_path / "old.lrnn").run([1, 2, 3])[0], m.run([1, 2, 3])[0])
    mixed = dict(old, checksum=checksum(old, tensors))  # base-3 codes under an old version: refused
    save_file(tensors, str(tmp_path / "mixed.lrnn"), metadata={"leanrnn": json.dumps(mixed)})
    with pytest.raises(ModelFormatError, match="l0.w_ih"):
        Model.load(tmp_path / "mixed.lrnn")


def test_gate_nonlinearities_within_their_stated_bounds():
    from leanrnn.runtime.kernels import tanh_sigmoid
    x = np.linspace(-20, 20, 400_001).astype(np.float32)
    t, s = np.empty_like(x), np.empty_like(x)
    tanh_sigmoid(x, t, s)
    x64 = x.astype(np.float64)
    assert np.abs(t - np.tanh(x64)).max() < 6e-7
    assert np.abs(s - 1 / (1 + np.exp(-x64))).max() < 4e-7
    assert t[0] == -1 and t[-1] == 1 and np.abs(t).max() <= 1 and s.min() >= 0 and s.max() <= 1
