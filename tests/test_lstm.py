import copy

import numpy as np
import pytest
import torch

from leanrnn.nn import LeanLSTM, LeanLSTMCell

torch.set_default_dtype(torch.float32)


def _pair(**kw):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(5, 7, **kw)
    ours = LeanLSTM(5, 7, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("kw", [{}, {"batch_first": True}, {"num_layers": 2}, {"num_layers": 2, "bias": False},
                                {"num_layers": 2, "batch_first": True, "dropout": 0.0}])
@pytest.mark.parametrize("given_hx", [False, True])
def test_fp_matches_nn_lstm(kw, given_hx):
    ref, ours = _pair(**kw)
    L = kw.get("num_layers", 1)
    x = torch.randn(4, 9, 5) if kw.get("batch_first") else torch.randn(9, 4, 5)
    hx = (torch.randn(L, 4, 7), torch.randn(L, 4, 7)) if given_hx else None
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, (h1, c1) = ref(x1, hx)
    y2, (h2, c2) = ours(x2, hx)
    for a, b in ((y1, y2), (h1, h2), (c1, c2)):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-5
    # The hand-written BPTT gives nn.LSTM's gradients.
    g = torch.randn_like(y1)
    ((y1 * g).sum() + h1.sum() + c1.sum()).backward()
    ((y2 * g).sum() + h2.sum() + c2.sum()).backward()
    assert (x1.grad - x2.grad).abs().max() <= 1e-5
    for (n, p1), p2 in zip(ref.named_parameters(), ours.parameters()):
        assert (p1.grad - p2.grad).abs().max() <= 1e-4, n


def test_fp_unbatched_matches_nn_lstm():
    ref, ours = _pair(num_layers=2)
    x = torch.randn(6, 5)
    hx = (torch.randn(2, 7), torch.randn(2, 7))
    for h in (None, hx):
        y1, (h1, c1) = ref(x, h)
        y2, (h2, c2) = ours(x, h)
        assert y2.shape == (6, 7) and h2.shape == (2, 7)
        assert max((a - b).abs().max() for a, b in ((y1, y2), (h1, h2), (c1, c2))) <= 1e-5


def test_cell_matches_nn_lstm_cell():
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(5, 7)
    ours = LeanLSTMCell(5, 7)
    ours.load_state_dict(ref.state_dict())
    x, hx = torch.randn(3, 5), (torch.randn(3, 7), torch.randn(3, 7))
    for a, b in zip(ref(x, hx), ours(x, hx)):
        assert (a - b).abs().max() <= 1e-5
    h, c = ours(torch.randn(5))
    assert h.shape == (7,) and c.shape == (7,)


# -- the hand-written backward against plain autograd ------------------------------------------------

def _autograd_reference(m: LeanLSTM, x, w_ih, w_hh):
    """A direct autograd transcription of one LeanLSTM layer (training mode, batch stats)."""
    lay = m.layers[0]
    H = m.hidden_size
    bias = m.bias_ih_l0 + m.bias_hh_l0
    h = c = x.new_zeros(x.shape[1], H)
    outs = []

    def bn(v, gamma, beta=None):
        mean = v.mean(0)
        var = ((v - mean) ** 2).mean(0)
        y = (v - mean) / torch.sqrt(var + 1e-5) * gamma
        return y if beta is None else y + beta

    for t in range(x.shape[0]):
        xp, hp = x[t] @ w_ih.t(), h @ w_hh.t()
        z = (bn(xp, lay.bn_ih.weight) + bn(hp, lay.bn_hh.weight) if m.batch_norm else xp + hp) + bias
        i, f, g, o = z.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        cn = bn(c, lay.bn_c.weight, lay.bn_c.bias) if m.batch_norm else c
        hh = torch.sigmoid(o) * torch.tanh(cn)
        if lay.pruner.active:
            keep = hh.abs() >= lay.pruner.threshold
            h = hh + (hh * keep - hh).detach() if lay.pruner.grad == "ste" else hh * keep
        else:
            h = hh
        outs.append(h)
    return torch.stack(outs), h, c


@pytest.mark.parametrize("weights", ["fp", "binary", "ternary"])
@pytest.mark.parametrize("kw", [dict(batch_norm=True), dict(state_sparsity=0.5, prune_grad="ste"),
                                dict(state_sparsity=0.5, prune_grad="mask"),
                                dict(batch_norm=True, state_sparsity=0.7),
                                dict(weight_norm=True, state_sparsity=0.5)])
def test_bptt_matches_autograd(weights, kw):
    """Binary and ternary with deterministic rounding, so that both passes use the same codes: the
    reference takes the matrices through the module's own quantizer and weight norm (straight-through
    gradients to the latent weights), then runs the time loop under plain autograd."""
    torch.manual_seed(1)
    m = LeanLSTM(4, 6, weights=weights, stochastic=False, **kw).double()
    for lay in m.layers:
        lay.pruner.threshold.fill_(0.05)
        lay.pruner.momentum = 0.0  # keep the threshold fixed across both passes
    x = torch.randn(7, 5, 4, dtype=torch.float64)
    ref = copy.deepcopy(m)
    y1, (h1, c1) = m(x)
    lay = ref.layers[0]
    y2, h2, c2 = _autograd_reference(ref, x, ref._weight(ref.weight_ih_l0, lay.wn_ih),
                                     ref._weight(ref.weight_hh_l0, lay.wn_hh))
    assert torch.allclose(y1, y2, atol=1e-10)
    g = torch.randn_like(y1)
    ((y1 * g).sum() + (h1[0] * c1[0]).sum()).backward()
    ((y2 * g).sum() + (h2 * c2).sum()).backward()
    for (n, p1), p2 in zip(m.named_parameters(), ref.parameters()):
        assert torch.allclose(p1.grad, p2.grad, atol=1e-9), n


@pytest.mark.parametrize("weights", ["binary", "ternary"])
def test_gradients_reach_latent_weights_and_bn(weights):
    torch.manual_seed(0)
    m = LeanLSTM(3, 8, num_layers=2, weights=weights, batch_norm=True, state_sparsity=0.5)
    y, _ = m(torch.randn(5, 4, 3))
    y.square().sum().backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_training_is_stochastic_and_eval_is_deterministic():
    torch.manual_seed(0)
    m = LeanLSTM(3, 8, weights="ternary", batch_norm=True, state_sparsity=0.5)
    x = torch.randn(5, 4, 3)
    with torch.no_grad():
        y1, _ = m(x)
        y2, _ = m(x)
        assert not torch.equal(y1, y2)
        m.eval()
        e1, _ = m(x)
        e2, _ = m(x)
    assert torch.equal(e1, e2)


def test_eval_uses_running_bn_statistics():
    torch.manual_seed(0)
    m = LeanLSTM(3, 8, num_layers=2, batch_norm=True)
    x = torch.randn(6, 32, 3)
    with torch.no_grad():
        y_train, _ = m(x)  # first batch: running stats become exactly its batch stats
        m.eval()
        y_eval, _ = m(x)
        assert torch.allclose(y_train, y_eval, atol=1e-6)
        # With running statistics a sample's output does not depend on the rest of its batch...
        alone, _ = m(x[:, :1])
        assert torch.allclose(alone, y_eval[:, :1], atol=1e-6)
        # ...and steps beyond the longest training sequence reuse the last step's statistics.
        long, _ = m(torch.randn(10, 2, 3))
        assert torch.isfinite(long).all()
        m.train()
        y_batch, _ = m(x[:, :1].expand(-1, 4, -1) + torch.randn(6, 4, 3))
        assert m.layers[0].bn_hh.steps_tracked == 6


def test_bn_state_dict_round_trip_with_different_lengths():
    torch.manual_seed(0)
    a = LeanLSTM(3, 8, batch_norm=True)
    a(torch.randn(9, 4, 3))
    b = LeanLSTM(3, 8, batch_norm=True)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(12, 2, 3)
    assert torch.equal(a(x)[0], b(x)[0])


def test_state_stats_and_sparsity_in_eval():
    torch.manual_seed(0)
    m = LeanLSTM(3, 16, state_sparsity=0.8)
    assert np.isnan(m.state_stats()[0])
    for _ in range(20):
        m(torch.randn(10, 8, 3))
    m.reset_state_stats()
    m.eval()
    y, (h, _) = m(torch.randn(10, 8, 3))
    s = m.state_stats()[0]
    assert s == pytest.approx((y == 0).float().mean().item())
    assert s >= 0.7
    assert LeanLSTM(3, 4).state_stats() != [0.5]


def _copy_first_task(n, steps=12, gen=None):
    """Classify the sign of the first input after ``steps`` of distracting noise."""
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, steps, 2, generator=gen) * 0.5
    x[:, 0, 0] = y * 2.0 - 1.0
    x[:, 0, 1] = 0.0
    return x, y


def test_pruning_reaches_target_while_task_is_learned():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    lstm = LeanLSTM(2, 64, batch_first=True, weights="ternary", batch_norm=True, state_sparsity=0.9)
    head = torch.nn.Linear(64, 2)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=5e-3)
    for step in range(250):
        x, y = _copy_first_task(64, gen=gen)
        _, (h, _) = lstm(x)
        loss = torch.nn.functional.cross_entropy(head(h[-1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 199:
            lstm.reset_state_stats()
    assert lstm.state_stats()[0] >= 0.9  # over the last 50 training steps
    lstm.eval()
    lstm.reset_state_stats()
    x, y = _copy_first_task(512, gen=gen)
    with torch.no_grad():
        _, (h, _) = lstm(x)
        acc = (head(h[-1]).argmax(1) == y).float().mean().item()
    assert acc >= 0.95
    assert lstm.state_stats()[0] >= 0.8


def test_quantized_weights_reproduce_eval_outputs_without_torch():
    torch.manual_seed(0)
    m = LeanLSTM(3, 8, num_layers=2, weights="ternary", batch_norm=True, state_sparsity=0.6)
    for _ in range(5):
        m(torch.randn(6, 16, 3))
    m.eval()
    x = torch.randn(6, 2, 3)
    with torch.no_grad():
        y, _ = m(x)
    q = m.quantized_weights()
    assert q[0]["weight_hh"]["codes"].dtype == torch.int8
    assert set(q[0]["weight_hh"]["codes"].unique().tolist()) <= {-1, 0, 1}

    def sig(v):
        return 1 / (1 + np.exp(-v))

    out = x.numpy().astype(np.float64)
    for lay in q:
        W = {k: lay[k]["codes"].numpy() * lay[k]["scale"] for k in ("weight_ih", "weight_hh")}
        bn = {k: {f: (None if v is None else np.asarray(v)) for f, v in d.items()}
              for k, d in lay["batch_norm"].items()}
        H = W["weight_hh"].shape[1]
        h = np.zeros((x.shape[1], H))
        c = np.zeros_like(h)
        res = []
        for t in range(out.shape[0]):
            def norm(v, s, t=t):
                return (v - s["running_mean"][t]) / np.sqrt(s["running_var"][t] + s["eps"]) * s["gamma"]
            z = norm(out[t] @ W["weight_ih"].T, bn["ih"]) + norm(h @ W["weight_hh"].T, bn["hh"]) + lay["bias"].numpy()
            i, f, g, o = np.split(z, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(norm(c, bn["c"]) + bn["c"]["beta"])
            h = h * (np.abs(h) >= lay["prune_threshold"])
            res.append(h)
        out = np.stack(res)
    assert np.allclose(out, y.numpy(), atol=1e-5)


@pytest.mark.parametrize("kw, match", [
    (dict(weights="int4"), "weights='int4'"),
    (dict(state_sparsity=1.0), "state_sparsity"),
    (dict(state_sparsity=-0.1), "state_sparsity"),
    (dict(dropout=1.5), "dropout"),
    (dict(num_layers=0), "num_layers"),
    (dict(prune_grad="zero", state_sparsity=0.5), "prune_grad"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        LeanLSTM(3, 4, **kw)


def test_bad_inputs():
    m = LeanLSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input must be 2-D"):
        m(torch.randn(2, 3, 4, 3))
    with pytest.raises(ValueError, match="input_size=3"):
        m(torch.randn(5, 2, 4))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(2, 2, 4\)"):
        m(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="input_size=3"):
        LeanLSTMCell(3, 4)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="weights="):
        LeanLSTMCell(3, 4, weights="int2")
