"""The fused backward kernel (``leanrnn.nn.fused``) against the tensor-op backward it replaces, in
every case it takes: pruning masks on the output or only on the fed-back state, straight-through
pruning, no pruning, packed batches, given initial states, float32 and float64."""
from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from leanrnn.nn import LeanLSTM, fused, recurrence

CASES = {
    "fp": dict(weights="fp"),
    "ternary-wn-mask": dict(weights="ternary", weight_norm=True, state_sparsity=0.5),
    "ternary-wn-dense": dict(weights="ternary", weight_norm=True, state_sparsity=0.5, prune_output=False),
    "binary-ste": dict(weights="binary", state_sparsity=0.5, prune_grad="ste"),
    "fp-mask-2layers": dict(weights="fp", state_sparsity=0.5, num_layers=2),
    "ternary-bn-mask": dict(weights="ternary", batch_norm=True, state_sparsity=0.5),
    "binary-bn-dense": dict(weights="binary", batch_norm=True, state_sparsity=0.5, prune_output=False),
    "fp-bnshared": dict(weights="fp", batch_norm=True, bn_stats="shared"),
    "ternary-bn-mask-eval": dict(weights="ternary", batch_norm=True, state_sparsity=0.5, eval=True),
}


def _grads(m: LeanLSTM, x, h0, c0, lengths, fused_on: bool, monkeypatch):
    monkeypatch.setattr(recurrence, "FUSED_BACKWARD", fused_on)
    x, h0, c0 = (t.detach().clone().requires_grad_() for t in (x, h0, c0))
    inp = pack_padded_sequence(x, lengths, enforce_sorted=False) if lengths is not None else x
    y, (h, c) = m(inp, (h0, c0))
    if lengths is not None:
        y = pad_packed_sequence(y)[0]
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    loss = (y * w).sum() + 2 * h.sum() + (c * c).sum()
    return y, torch.autograd.grad(loss, [x, h0, c0, *m.parameters()])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_backward_equals_tensor_ops(case, packed, dtype, monkeypatch):
    torch.manual_seed(0)
    kw = dict(CASES[case])
    layers, evaluate = kw.pop("num_layers", 1), kw.pop("eval", False)
    m = LeanLSTM(5, 8, num_layers=layers, stochastic=False, dtype=dtype, **kw)
    x = torch.randn(7, 4, 5, dtype=dtype)
    with torch.no_grad():
        m(x)  # training mode: sets the thresholds to prune about half of the states
    for lay in m.layers:
        lay.pruner.momentum = lay.pruner.gain = 0.0  # one threshold for both passes
    if evaluate:  # batch norm's running statistics: the gradient of a model in eval mode
        m.eval()
    elif "batch_norm" in kw:
        for mod in m.modules():  # the running statistics must not move between the passes
            if hasattr(mod, "momentum") and isinstance(mod.momentum, float):
                mod.momentum = 0.0
    h0, c0 = torch.randn(layers, 4, 8, dtype=dtype), torch.randn(layers, 4, 8, dtype=dtype)
    lengths = torch.tensor([7, 3, 5, 1]) if packed else None
    calls = []
    for name in ("backward_step", "backward_step_bn"):
        real = getattr(fused, name)
        monkeypatch.setattr(fused, name, lambda *a, real=real: (calls.append(1), real(*a))[1])
    y1, g1 = _grads(m, x, h0, c0, lengths, True, monkeypatch)
    assert len(calls) == 7 * layers, "the fused kernel must run once per step and layer"
    y2, g2 = _grads(m, x, h0, c0, lengths, False, monkeypatch)
    assert len(calls) == 7 * layers, "the tensor-op path must not call the kernel"
    assert torch.equal(y1, y2)
    if "state_sparsity" in kw:
        assert m.state_stats()[0] > 0.05, "the case must prune"
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    names = ["input", "h0", "c0"] + [n for n, _ in m.named_parameters()]
    for n, a, b in zip(names, g1, g2):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=n)
