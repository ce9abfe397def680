"""Pruning only the state fed back (``prune_output=False``): the hand-written BPTT against autograd
over a plain loop, and the exported file in the runtime against torch eval."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from leanrnn.export.exporter import model_to_lrnn
from leanrnn.export.format import write_lrnn
from leanrnn.nn import LeanLSTM
from leanrnn.runtime import Model
from leanrnn.tasks.classify import SeqClassifier
from leanrnn.tasks.lm import LanguageModel

LENGTHS = [5, 3, 4]


def reference(m: LeanLSTM, x, h0, c0, theta: float, lengths):
    """The dense-output semantics, step by step under autograd: ``h`` is pruned where it enters
    ``W_hh`` (a given ``h_0`` too), the output and ``h_n`` are not."""
    b = m.bias_ih_l0 + m.bias_hh_l0
    h, c, outs = h0[0], c0[0], []
    for t in range(x.shape[0]):
        fed = torch.where(h.abs() >= theta, h, torch.zeros_like(h))
        i, f, g, o = (x[t] @ m.weight_ih_l0.t() + fed @ m.weight_hh_l0.t() + b).chunk(4, 1)
        cn = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        hn = torch.sigmoid(o) * torch.tanh(cn)
        if m.proj_size:
            hn = hn @ m.weight_hr_l0.t()
        alive = torch.tensor([t < n for n in lengths]).unsqueeze(1)
        h, c = torch.where(alive, hn, h), torch.where(alive, cn, c)
        outs.append(torch.where(alive, hn, torch.zeros_like(hn)))
    return torch.stack(outs), h, c


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("proj", [0, 3])
def test_dense_output_gradients_match_autograd(packed, proj):
    torch.manual_seed(0)
    m = LeanLSTM(4, 6, proj_size=proj, state_sparsity=0.5, prune_output=False).double()
    x = torch.randn(5, 3, 4, dtype=torch.double)
    h0 = torch.randn(1, 3, proj or 6, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(1, 3, 6, dtype=torch.double, requires_grad=True)
    with torch.no_grad():
        m(x)  # training mode: sets the threshold to prune about half of the states
    theta = float(m.layers[0].pruner.threshold)
    m.reset_state_stats()
    lengths = LENGTHS if packed else [5, 5, 5]
    y, (hn, cn) = m(pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False) if packed else x,
                    (h0, c0))
    if packed:
        y = pad_packed_sequence(y)[0]
    yr, hr, cr = reference(m, x, h0, c0, theta, lengths)
    valid = torch.arange(5)[:, None] < torch.tensor(lengths)[None]  # (T, B): not padding
    assert (y[valid] == 0).double().mean() < 0.05, "the output must not be the pruned state"
    assert m.state_stats()[0] > 0.15, "the fed-back state must be pruned"
    wts = torch.randn_like(y)
    params = [h0, c0, m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0] + ([m.weight_hr_l0] if proj else [])
    got = torch.autograd.grad((y * wts).sum() + 2 * hn.sum() + (cn * cn).sum(), params)
    want = torch.autograd.grad((yr * wts).sum() + 2 * hr.sum() + (cr * cr).sum(), params)
    torch.testing.assert_close(y, yr, rtol=0, atol=1e-12)
    torch.testing.assert_close(hn[0], hr, rtol=0, atol=1e-12)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["lm", "lm-proj", "classifier", "bidirectional"])
@pytest.mark.parametrize("weights", ["fp", "ternary"])
def test_runtime_matches_torch_eval(tmp_path, kind, weights):
    torch.manual_seed(1)
    kw = dict(weights=weights, weight_norm=True, state_sparsity=0.5, prune_output=False)
    lm = kind.startswith("lm")
    if lm:
        model = LanguageModel(20, 16, num_layers=2, embed_size=8 if kind == "lm" else 0,
                              proj_size=6 if kind == "lm-proj" else 0, **kw)
    else:
        model = SeqClassifier(1, 16, 10, num_layers=2, bidirectional=kind == "bidirectional", **kw)
    for _ in range(3):  # training passes set the thresholds
        model(torch.randint(0, 20, (10, 4)) if lm else torch.randn(4, 12, 1))
    model.eval()
    header, tensors = model_to_lrnn(model, {"task": "char-lm" if lm else "classify"},
                                    [chr(65 + i) for i in range(20)] if lm else None)
    assert all(L["prune_output"] is False for L in header["layers"])
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    rt = Model.load(tmp_path / "m.lrnn")
    with torch.no_grad():
        if lm:
            toks = torch.randint(0, 20, (30, 1))
            want = model(toks)[0][:, 0].numpy()
            got, state = rt.run(toks[:, 0].numpy())
            assert min(state.sparsity()) > 0.2, "the runtime must prune the fed-back state"
        else:
            x = torch.rand(3, 12, 1)
            want, got = model(x).numpy(), rt.classify(x.numpy())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
