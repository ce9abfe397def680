"""LeanLSTM as a drop-in nn.LSTM: bidirectional, proj_size, PackedSequence, argument checks, state_dicts,
in every weight mode with normalization and pruning."""
import re

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from leanrnn.nn import LeanLSTM, LeanLSTMCell
from leanrnn.tasks import SeqClassifier

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

F64 = torch.float64
IN, H, P, T, B = 5, 7, 3, 6, 4
LENGTHS = [3, 6, 1, 5]  # unsorted, for PackedSequence

CASES = [
    dict(bidirectional=True),
    dict(proj_size=P),
    dict(bidirectional=True, proj_size=P),
    dict(num_layers=3, bidirectional=True, proj_size=P),
    dict(num_layers=2, bias=False, bidirectional=True),
    dict(num_layers=2, batch_first=True, bidirectional=True, proj_size=P),
    dict(bias=False, proj_size=P, packed=True),
    dict(num_layers=2, bidirectional=True, proj_size=P, packed=True),
    dict(num_layers=3, batch_first=True, bidirectional=True, packed=True),
]
NORMS = [dict(batch_norm=True), dict(batch_norm=True, bn_stats="shared"), dict(weight_norm=True)]


def _inputs(kw, gen, dtype=F64):
    """Input (padded tensor or PackedSequence) and an initial state for the model built from ``kw``."""
    kw = dict(kw)
    packed, bf = kw.pop("packed", False), kw.get("batch_first", False)
    D = 2 if kw.get("bidirectional") else 1
    LD, R = kw.get("num_layers", 1) * D, kw.get("proj_size", 0) or H
    x = torch.randn(B, T, IN, generator=gen, dtype=dtype)
    if packed:
        x = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    elif not bf:
        x = x.transpose(0, 1).contiguous()
    hx = (torch.randn(LD, B, R, generator=gen, dtype=dtype), torch.randn(LD, B, H, generator=gen, dtype=dtype))
    return kw, x, hx


def _data(y):
    return y.data if hasattr(y, "batch_sizes") else y


def _loss(y, h, c, gen):
    y = _data(y)
    return sum((v * torch.randn(v.shape, generator=gen, dtype=v.dtype)).sum() for v in (y, h, c))


@pytest.mark.parametrize("given_hx", [False, True])
@pytest.mark.parametrize("kw", CASES, ids=str)
def test_fp_equals_nn_lstm_with_gradients(kw, given_hx):
    gen = torch.Generator().manual_seed(0)
    kw, x, hx = _inputs(kw, gen)
    torch.manual_seed(0)
    ref = torch.nn.LSTM(IN, H, dtype=F64, **kw)
    ours = LeanLSTM(IN, H, dtype=F64, **kw)
    ours.load_state_dict(ref.state_dict())
    hx = tuple(v.requires_grad_() for v in hx) if given_hx else None
    res = []
    for m in (ref, ours):
        xin = x
        if isinstance(x, torch.Tensor):
            xin = x.clone().requires_grad_()
        y, (h, c) = m(xin, hx)
        grads = torch.autograd.grad(_loss(y, h, c, torch.Generator().manual_seed(1)),
                                    [*m.parameters()] + ([xin] if xin is not x else []) + list(hx or ()))
        res.append((_data(y), h, c, grads))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    for a, b in zip(res[0][:3], res[1][:3]):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-8
    for a, b in zip(res[0][3], res[1][3]):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-8


def test_fp_unbatched_bidirectional_projection_equals_nn_lstm():
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, proj_size=P, dtype=F64)
    ref, ours = torch.nn.LSTM(IN, H, **kw), LeanLSTM(IN, H, **kw)
    ours.load_state_dict(ref.state_dict())
    x, hx = torch.randn(T, IN, dtype=F64), (torch.randn(4, P, dtype=F64), torch.randn(4, H, dtype=F64))
    for a, b in zip(ref(x, hx)[1] + (ref(x, hx)[0],), ours(x, hx)[1] + (ours(x, hx)[0],)):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-8


@pytest.mark.parametrize("weights", ["fp", "binary", "ternary"])
@pytest.mark.parametrize("norm", NORMS, ids=str)
def test_every_mode_runs_the_same_calls(weights, norm):
    """Training calls give nn.LSTM's shapes and gradients for every parameter; in eval each sequence of
    a packed batch gives what it gives alone (running statistics, fixed threshold)."""
    gen = torch.Generator().manual_seed(0)
    for case in (CASES[3], CASES[5], CASES[7]):
        kw, x, hx = _inputs(case, gen, torch.float32)
        torch.manual_seed(0)
        ref = torch.nn.LSTM(IN, H, **kw)
        m = LeanLSTM(IN, H, weights=weights, state_sparsity=0.5, **norm, **kw)
        m.load_state_dict(ref.state_dict())
        for _ in range(3):
            m.reset_state_stats()  # the zeros of the last call, with a threshold set by the first ones
            y, (h, c) = m(x, hx)
            _loss(y, h, c, gen).backward()
        y_ref, (h_ref, c_ref) = ref(x, hx)
        assert _data(y).shape == _data(y_ref).shape and h.shape == h_ref.shape and c.shape == c_ref.shape
        for n, p in m.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n
        assert min(m.state_stats()) > 0.05  # every direction prunes
        if not case.get("packed"):
            continue
        m.eval()
        with torch.no_grad():
            y, (h, c) = m(x, hx)
            y, _ = pad_packed_sequence(y, batch_first=True)
            xs, _ = pad_packed_sequence(x, batch_first=True)
            for j, n in enumerate(LENGTHS):
                yj, (hj, cj) = m(xs[j, :n].unsqueeze(1), (hx[0][:, j:j + 1], hx[1][:, j:j + 1]))
                assert torch.allclose(yj[:, 0], y[j, :n], atol=1e-5)
                assert torch.allclose(hj[:, 0], h[:, j], atol=1e-5) and torch.allclose(cj[:, 0], c[:, j], atol=1e-5)


# -- the hand-written BPTT against autograd, in every weight mode ----------------------------------------

def _autograd_reference(m: LeanLSTM, xs, lengths):
    """Autograd transcription of a one-layer LeanLSTM (training mode, batch statistics) over a padded
    batch whose sequences are sorted by decreasing length; returns outputs ``(T, B, D*R)`` and h_n, c_n."""
    D = m.num_directions
    outs, hs, cs = [], [], []
    for d in range(D):
        w_ih, w_hh, b_ih, b_hh, w_hr = m._all_params()[d]
        lay = m.layers[d]
        w_ih, w_hh, w_hr = m._weight(w_ih, lay.wn_ih), m._weight(w_hh, lay.wn_hh), m._weight(w_hr, lay.wn_hr)
        x = xs if d == 0 else torch.stack([torch.cat([xs[:n, j].flip(0), xs[n:, j]]) for j, n in
                                           enumerate(lengths)], 1)
        R = w_hh.shape[1]
        h, c = x.new_zeros(x.shape[1], R), x.new_zeros(x.shape[1], m.hidden_size)
        out = []

        def bn(v, mod):
            var, mean = torch.var_mean(v, 0, correction=0)
            y = (v - mean) / torch.sqrt(var + 1e-5) * mod.weight
            return y if mod.bias is None else y + mod.bias

        for t in range(x.shape[0]):
            b = sum(n > t for n in lengths)
            xp, hp = x[t, :b] @ w_ih.t(), h[:b] @ w_hh.t()
            z = (bn(xp, lay.bn_ih) + bn(hp, lay.bn_hh) if m.batch_norm else xp + hp) + b_ih + b_hh
            i, f, g, o = z.chunk(4, 1)
            cb = torch.sigmoid(f) * c[:b] + torch.sigmoid(i) * torch.tanh(g)
            hh = torch.sigmoid(o) * torch.tanh(bn(cb, lay.bn_c) if m.batch_norm else cb)
            r = hh if w_hr is None else hh @ w_hr.t()
            r = r * (r.abs() >= lay.pruner.threshold)
            h, c = torch.cat([r, h[b:]]), torch.cat([cb, c[b:]])
            out.append(torch.cat([r, r.new_zeros(x.shape[1] - b, R)]))
        out = torch.stack(out)
        if d == 1:
            out = torch.stack([torch.cat([out[:n, j].flip(0), out[n:, j]]) for j, n in enumerate(lengths)], 1)
        outs.append(out)
        hs.append(h)
        cs.append(c)
    return torch.cat(outs, 2), torch.stack(hs), torch.stack(cs)


@pytest.mark.parametrize("weights", ["fp", "binary", "ternary"])
@pytest.mark.parametrize("kw", [dict(batch_norm=True), dict(batch_norm=True, proj_size=P, bidirectional=True),
                                dict(weight_norm=True, proj_size=P, bidirectional=True)], ids=str)
def test_bptt_matches_autograd(weights, kw):
    torch.manual_seed(1)
    m = LeanLSTM(IN, H, weights=weights, stochastic=False, state_sparsity=0.5, dtype=F64, **kw)
    for lay in m.layers:
        lay.pruner.threshold.fill_(0.05)
        lay.pruner.momentum = lay.pruner.gain = 0.0  # keep the threshold fixed across both passes
    lengths = [6, 6, 4, 2]  # sorted: the padded reference and the packed batch share the order
    xs = torch.randn(T, B, IN, dtype=F64)
    grads = []
    for packed in (False, True):  # the reference first: a training call moves the threshold after it
        x = xs.clone().requires_grad_()
        if packed:
            y, (h, c) = m(pack_padded_sequence(x, lengths))
            y, _ = pad_packed_sequence(y)
        else:
            y, h, c = _autograd_reference(m, x, lengths)
        loss = _loss(y, h, c, torch.Generator().manual_seed(2))
        grads.append((y, torch.autograd.grad(loss, [x, *m.parameters()])))
    assert (grads[0][0] - grads[1][0]).abs().max() <= 1e-10
    assert (grads[0][0] == 0).float().mean() > 0.3
    for (n, _), a, b in zip([("input", 0)] + list(m.named_parameters()), grads[0][1], grads[1][1]):
        assert (a - b).abs().max() <= 1e-9, n


# -- nn.LSTM's arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(bias=1), dict(batch_first="yes"), dict(input_size=2.0), dict(hidden_size="7"),
                                dict(proj_size=-1), dict(proj_size=H), dict(dropout=2), dict(dropout=True),
                                dict(num_layers=0), dict(input_size=0), dict(num_layers=1.0), dict(proj_size=1.5)],
                         ids=str)
def test_bad_arguments_raise_as_nn_lstm(kw):
    """The same exception type; nn.LSTM's message where it checks the argument itself, else one that
    names the argument (nn.LSTM fails later, in range() or torch.empty())."""
    args = {"input_size": IN, "hidden_size": H, **kw}
    with pytest.raises((TypeError, ValueError)) as ref:
        torch.nn.LSTM(**args)
    (name,) = kw
    own = name in str(ref.value) or name == "dropout"
    with pytest.raises(ref.type, match=re.escape(str(ref.value)) if own else f"^{name} should be of type int"):
        LeanLSTM(**args)


def test_nn_lstm_defaults_spelled_out_are_accepted():
    m = LeanLSTM(IN, H, 1, True, False, 0.0, False, 0, None, None, weights="ternary")
    assert not m.bidirectional and m.proj_size == 0
    assert "bidirectional" not in repr(m) and "proj_size=3" in repr(LeanLSTM(IN, H, proj_size=3))


@pytest.mark.parametrize("extra", [dict(weights="ternary", batch_norm=True, state_sparsity=0.9),
                                   dict(weights="binary", weight_norm=True, state_sparsity=0.5)], ids=str)
def test_nn_lstm_state_dict_loads_strictly(extra):
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, proj_size=P)
    ref = torch.nn.LSTM(IN, H, **kw)
    m = LeanLSTM(IN, H, **kw, **extra)
    fresh = {k: v.clone() for k, v in m.state_dict().items() if ".layers." in "." + k}
    m.load_state_dict(ref.state_dict())  # strict
    for k, v in ref.state_dict().items():
        assert torch.equal(m.state_dict()[k], v)
    for k, v in fresh.items():
        if ".wn_" not in k:
            assert torch.equal(m.state_dict()[k], v), k
    # A LeanLSTM state_dict missing some of its extra parts is still an error.
    sd = m.state_dict()
    del sd["layers.1.pruner.threshold"]
    with pytest.raises(RuntimeError, match="layers.1.pruner.threshold"):
        LeanLSTM(IN, H, **kw, **extra).load_state_dict(sd)


def test_cell_loads_nn_lstm_cell_state_dict_strictly():
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(IN, H, dtype=F64)
    m = LeanLSTMCell(IN, H, dtype=F64, weight_norm=True, state_sparsity=0.5)
    m.load_state_dict(ref.state_dict())
    m.layer.pruner.threshold.fill_(0.0)
    x, hx = torch.randn(B, IN, dtype=F64), (torch.randn(B, H, dtype=F64), torch.randn(B, H, dtype=F64))
    for a, b in zip(ref(x, hx), m(x, hx)):
        assert (a - b).abs().max() <= 1e-10


def test_weight_norm_loaded_from_nn_lstm_reproduces_it():
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, proj_size=P, dtype=F64)
    ref = torch.nn.LSTM(IN, H, **kw)
    m = LeanLSTM(IN, H, weight_norm=True, **kw)
    m.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, IN, dtype=F64)
    assert (m(x)[0] - ref(x)[0]).abs().max() <= 1e-10


# -- export dicts and the bidirectional classifier ------------------------------------------------------

def test_quantized_weights_of_bidirectional_projection_reproduce_eval_outputs():
    torch.manual_seed(0)
    m = LeanLSTM(IN, H, num_layers=2, bidirectional=True, proj_size=P, weights="ternary", batch_norm=True,
                 state_sparsity=0.5)
    for _ in range(5):
        m(torch.randn(T, 16, IN))
    m.eval()
    x = torch.randn(T, 2, IN)
    with torch.no_grad():
        y, (h_n, _) = m(x)
    q = m.quantized_weights()
    assert [(d["layer"], d["reverse"]) for d in q] == [(0, False), (0, True), (1, False), (1, True)]
    assert q[0]["weight_hr"]["codes"].shape == (P, H) and q[0]["weight_hh"]["codes"].shape == (4 * H, P)

    def sig(v):
        return 1 / (1 + np.exp(-v))

    def run(lay, xs):
        W = {k: lay[k]["codes"].numpy() * lay[k]["scale"] for k in ("weight_ih", "weight_hh", "weight_hr")}
        bn = lay["batch_norm"]
        r, c, res = np.zeros((xs.shape[1], P)), np.zeros((xs.shape[1], H)), []
        for t in range(xs.shape[0]):
            def norm(v, k, t=t):
                s = {name: np.asarray(a) for name, a in bn[k].items() if a is not None}
                return (v - s["running_mean"][t]) / np.sqrt(s["running_var"][t] + s["eps"]) * s["gamma"]
            z = norm(xs[t] @ W["weight_ih"].T, "ih") + norm(r @ W["weight_hh"].T, "hh") + lay["bias"].numpy()
            i, f, g, o = np.split(z, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            r = (sig(o) * np.tanh(norm(c, "c") + bn["c"]["beta"].numpy())) @ W["weight_hr"].T
            r = r * (np.abs(r) >= lay["prune_threshold"])
            res.append(r)
        return np.stack(res)

    out = x.numpy().astype(np.float64)
    for k in range(2):
        fwd, rev = run(q[2 * k], out), run(q[2 * k + 1], out[::-1])[::-1]
        out = np.concatenate([fwd, rev], 2)
    assert np.allclose(out, y.numpy(), atol=1e-5)
    assert np.allclose(out[-1, :, :P], h_n[2].numpy(), atol=1e-5) and np.allclose(out[0, :, P:], h_n[3], atol=1e-5)


def test_bidirectional_classifier_reads_both_directions():
    torch.manual_seed(0)
    clf = SeqClassifier(2, 8, 3, num_layers=2, bidirectional=True, weights="ternary", batch_norm=True)
    assert clf.head.in_features == 16
    x = torch.randn(5, 9, 2)
    logits = clf(x)
    assert logits.shape == (5, 3)
    logits.square().sum().backward()
    assert clf.lstm.weight_hh_l1_reverse.grad.abs().sum() > 0
    # The reverse half of the readout is the reverse direction's state after the first step.
    clf.eval()
    with torch.no_grad():
        y, (h, _) = clf.lstm(x)
        assert torch.equal(h[-1], y[:, 0, 8:]) and torch.equal(h[-2], y[:, -1, :8])
