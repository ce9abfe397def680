import math

import pytest
import torch

from leanrnn.quant import binarize, codes, glorot_scale, quantize, ternarize


@pytest.fixture
def w():
    torch.manual_seed(0)
    return (torch.randn(64, 48) * 0.1).requires_grad_()


def test_scale_is_half_glorot_bound(w):
    assert glorot_scale(w) == pytest.approx(0.5 * math.sqrt(6 / (64 + 48)))


@pytest.mark.parametrize("stochastic", [False, True])
def test_binary_values(w, stochastic):
    a = glorot_scale(w)
    q = binarize(w, stochastic=stochastic)
    vals = torch.unique(q)
    assert len(vals) == 2 and torch.allclose(vals, torch.tensor([-a, a]))


@pytest.mark.parametrize("stochastic", [False, True])
def test_ternary_values(w, stochastic):
    a = glorot_scale(w)
    vals = torch.unique(ternarize(w, stochastic=stochastic))
    assert len(vals) == 3 and torch.allclose(vals, torch.tensor([-a, 0.0, a]))


def test_deterministic_rules(w):
    a = glorot_scale(w)
    x = torch.tensor([[-2 * a, -a / 3, -a / 4, 0.0, a / 4, a / 3 + 1e-6, 2 * a]])
    assert torch.equal(torch.round(ternarize(x, scale=a) / a), torch.tensor([[-1., -1, 0, 0, 0, 1, 1]]))
    assert torch.equal(torch.round(binarize(x, scale=a) / a), torch.tensor([[-1., -1, -1, 1, 1, 1, 1]]))


@pytest.mark.parametrize("fn", [binarize, ternarize])
def test_gradient_is_straight_through(w, fn):
    g = torch.randn_like(w)
    (fn(w, stochastic=True) * g).sum().backward()
    assert torch.equal(w.grad, g)


@pytest.mark.parametrize("fn", [binarize, ternarize])
def test_stochastic_sampling_is_unbiased(fn):
    a = 0.2
    latent = torch.linspace(-2 * a, 2 * a, 41).unsqueeze(0)
    gen = torch.Generator().manual_seed(1)
    n = 20000
    mean = fn(latent.expand(n, -1).contiguous(), stochastic=True, scale=a, generator=gen).mean(0)
    # Standard error of the mean of a {-a, a}-valued variable is at most a / sqrt(n).
    assert torch.allclose(mean, latent.clamp(-a, a).squeeze(0), atol=5 * a / math.sqrt(n))


def test_codes_and_fp(w):
    c, a = codes(w, "ternary")
    assert c.dtype == torch.int8 and set(c.unique().tolist()) <= {-1, 0, 1}
    assert torch.equal(c.float() * a, ternarize(w.detach()))
    assert quantize(w, "fp") is w
    with pytest.raises(ValueError, match="weights='fp'"):
        codes(w, "fp")
    with pytest.raises(ValueError, match="'binary'"):
        quantize(w, "int4")
