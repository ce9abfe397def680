"""Bidirectional and projected (LSTMP) models through export and the runtime: runtime = torch eval
for every weight mode and normalization, and a bidirectional ternary classifier trained by
``leanrnn train`` exports and classifies the digits exactly as torch does."""
import numpy as np
import pytest
import torch
from torch import nn

from leanrnn.export import ExportError, read_lrnn, write_lrnn
from leanrnn.export.exporter import model_to_lrnn, summary
from leanrnn.runtime import Model
from leanrnn.tasks import LanguageModel, SeqClassifier

V, VOCAB = 12, [chr(97 + i) for i in range(12)]
NORMS = {"none": {}, "BN per step": dict(batch_norm=True), "shared BN": dict(batch_norm=True, bn_stats="shared"),
         "weight norm": dict(weight_norm=True)}


def _train(m, batch, loss, steps=6):
    """A few Adam steps: normalization statistics, gains and pruning thresholds move off their start."""
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss(m, *batch()).backward()
        opt.step()
    return m.eval()


def _projected_lm(weights, norm, layers=2, H=16, P=6):
    torch.manual_seed(0)
    m = LanguageModel(V, H, num_layers=layers, embed_size=8, weights=weights, proj_size=P, state_sparsity=0.5,
                      **NORMS[norm])
    m.decoder = nn.Linear(P, V)  # the decoder reads r, of width proj_size

    def loss(m, ids):
        return nn.functional.cross_entropy(m(ids[:-1])[0].reshape(-1, V), ids[1:].reshape(-1))
    return _train(m, lambda: (torch.randint(0, V, (9, 8)),), loss)


def _bidir_classifier(weights, norm, proj=0, layers=2, H=16, n_in=3, steps=6):
    torch.manual_seed(0)
    m = SeqClassifier(n_in, H, 5, num_layers=layers, bidirectional=True, weights=weights, proj_size=proj,
                      state_sparsity=0.5, **NORMS[norm])

    def loss(m, x, y):
        return nn.functional.cross_entropy(m(x), y)
    return _train(m, lambda: (torch.randn(8, 10, n_in), torch.randint(0, 5, (8,))), loss, steps)


def _load(model, tmp_path, task="char-lm", compact=False):
    header, tensors = model_to_lrnn(model, {"task": task}, VOCAB if task != "classify" else None, compact=compact)
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    return Model.load(tmp_path / "m.lrnn")


@pytest.mark.parametrize("weights", ["fp", "binary", "ternary"])
@pytest.mark.parametrize("norm", list(NORMS))
def test_projected_lm_equals_torch_eval(tmp_path, weights, norm):
    model = _projected_lm(weights, norm)
    rt = _load(model, tmp_path)
    assert [L.output_size for L in rt.spec.layers] == [6, 6] and rt.spec.layers[1].input_size == 6
    ids = torch.randint(0, V, (20, 3), generator=torch.Generator().manual_seed(1))  # longer than training's 8
    with torch.no_grad():
        ref, (h, c) = model(ids)
    out, state = rt.run(ids.numpy())
    assert np.allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)
    assert np.allclose(state.h[-1], h[-1].numpy(), atol=1e-5) and np.allclose(state.c[-1], c[-1].numpy(), atol=1e-5)
    assert state.h[0].shape == (3, 6) and state.c[0].shape == (3, 16)
    assert all(0 < s < 1 for s in state.sparsity())  # the pruned r, which W_hh reads


@pytest.mark.parametrize("weights", ["fp", "binary", "ternary"])
@pytest.mark.parametrize("norm", list(NORMS))
@pytest.mark.parametrize("proj", [0, 6])
def test_bidirectional_classifier_equals_torch_eval(tmp_path, weights, norm, proj):
    model = _bidir_classifier(weights, norm, proj)
    rt = _load(model, tmp_path, "classify")
    assert rt.bidirectional and [(L.layer, L.reverse) for L in rt.spec.layers] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    x = torch.randn(7, 13, 3, generator=torch.Generator().manual_seed(1))  # longer than training's 10 steps
    with torch.no_grad():
        ref = model(x).numpy()
    got = rt.classify(x.numpy())
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-5) and (got.argmax(1) == ref.argmax(1)).all()
    assert np.allclose(rt.classify(x[2:3].numpy()), ref[2:3], rtol=1e-4, atol=1e-5)  # streams are independent


def test_bidirectional_models_run_on_whole_sequences_only(tmp_path):
    rt = _load(_bidir_classifier("binary", "weight norm", layers=1), tmp_path, "classify")
    for call in (lambda: rt.run(np.zeros((5, 3), np.float32)), lambda: rt.step(np.zeros(3, np.float32)),
                 lambda: rt.initial_state(1), lambda: rt.trace_zero_masks(np.zeros((5, 3), np.float32))):
        with pytest.raises(ValueError, match=r"bidirectional.*classify\(x\).*\(N, T, 3\)") as e:
            call()
        assert "\n" not in str(e.value)
    text = summary(tmp_path / "m.lrnn")
    assert "bidirectional" in text and "l0_reverse.w_hh" in text
    from leanrnn.runtime.bench import bench_model
    r = bench_model(str(tmp_path / "m.lrnn"), steps=3)
    assert r["seconds_per_step"] > 0 and len(r["state_sparsity"]) == 2


def test_a_bidirectional_language_model_is_refused_in_one_line():
    torch.manual_seed(0)
    m = LanguageModel(V, 8, embed_size=4, bidirectional=True)
    with pytest.raises(ExportError, match="bidirectional language model.*without --bidirectional"):
        model_to_lrnn(m.eval(), {"task": "char-lm"}, VOCAB)


def test_compact_projected_and_bidirectional_files(tmp_path):
    """Compact: int8 output layer, fp16 tables (the projection scale too); within the compact tolerance."""
    model = _bidir_classifier("ternary", "weight norm", proj=6)
    rt = _load(model, tmp_path, "classify", compact=True)
    _, tensors = read_lrnn(tmp_path / "m.lrnn")
    assert tensors["l1_reverse.s_hr"].dtype == np.float16 and tensors["out.weight"].dtype == np.int8
    x = torch.randn(16, 10, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(rt.classify(x.numpy()) - ref).max() < 0.05
    with torch.no_grad():
        model.lstm.layers[3].wn_hh.fill_(1e6)  # a folded scale past float16's largest value
    with pytest.raises(ExportError, match=r"l1_reverse.s_hh reaches .* beyond float16's range.*without --compact"):
        model_to_lrnn(model, {"task": "classify"}, None, compact=True)


def test_rtl_fixed_point_refuses_what_it_does_not_model(tmp_path):
    from leanrnn.rtl.fixed import FixedLayer
    _load(_projected_lm("ternary", "none", layers=1), tmp_path)
    with pytest.raises(ValueError, match="projection"):
        FixedLayer.from_export(*read_lrnn(tmp_path / "m.lrnn"), 0)
    _load(_bidir_classifier("ternary", "none", layers=1), tmp_path, "classify")
    with pytest.raises(ValueError, match="bidirectional"):
        FixedLayer.from_export(*read_lrnn(tmp_path / "m.lrnn"), 0)


def test_trained_bidirectional_ternary_digits_classifier_matches_torch_eval(tmp_path, capsys, monkeypatch):
    """Issue 13's acceptance: ``leanrnn train --bidirectional`` (ternary, weight norm, 50% zero
    states) on the digits, ``leanrnn export``, then the runtime's test accuracy and logits equal
    torch eval's (argmax for every image, logits within 1e-4)."""
    from leanrnn.cli import main
    from leanrnn.data import load_digits_sequences
    from leanrnn.train import load_run
    run, path = tmp_path / "run", tmp_path / "m.lrnn"
    assert main(["train", "--task", "classify", "--data", "digits", "--bidirectional", "--weights", "ternary",
                 "--weight-norm", "--state-sparsity", "0.5", "--prune-output", "--hidden", "24", "--epochs", "1",
                 "--steps-per-epoch", "30", "--batch", "32", "--lr", "0.01", "--out", str(run)]) == 0
    assert main(["export", str(run), "-o", str(path)]) == 0
    assert "bidirectional" in capsys.readouterr().out
    _, model, _ = load_run(run, "best")
    _, (x, y) = load_digits_sequences()
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    rt = Model.load(path)
    assert rt.header["preprocess"]["source"] == "digits" and rt.bidirectional
    got = rt.classify(x.numpy())
    assert np.abs(got - ref).max() < 1e-4 and (got.argmax(1) == ref.argmax(1)).all()
    acc = float((got.argmax(1) == y.numpy()).mean())
    assert acc == float((ref.argmax(1) == y.numpy()).mean()) and acc > 0.2
    layers = rt.header["layers"]
    assert layers[0]["threshold"] > 0 and layers[0]["reverse"]["threshold"] > 0
    zeros = rt._classify_both_ways(np.ascontiguousarray(x.numpy().transpose(1, 0, 2)))[1]
    assert all(0.3 < z < 0.7 for z in zeros), zeros

    def unfit(*a, **k):
        raise ExportError("why it does not fit")
    monkeypatch.setattr("leanrnn.export.exporter.model_to_lrnn", unfit)
    assert main(["export", str(run), "-o", str(tmp_path / "n.lrnn")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot export {run}: why it does not fit" in err
    assert not (tmp_path / "n.lrnn").exists()
