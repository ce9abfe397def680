"""scikit-learn's 8x8 handwritten digits, read pixel by pixel: the small embedded stand-in for
sequential MNIST (64 steps instead of 784). The data ship inside scikit-learn; nothing is downloaded."""
from __future__ import annotations

import torch

from .sources import IMAGE_PIXELS, PERMUTE_SEED


def load_digits_sequences(seed: int = 0, test_fraction: float = 0.2, permute: bool = False):
    """Return ``(x_train, y_train), (x_test, y_test)`` with ``x`` of shape ``(N, 64, 1)`` in ``[0, 1]``.

    The split is a fixed permutation drawn from ``seed``. ``permute=True`` also shuffles the pixel
    order with a fixed permutation (the "permuted" variant of the sequential-MNIST task).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency
        raise RuntimeError("the 'digits' data set needs scikit-learn: pip install scikit-learn") from e
    d = load_digits()
    raw_max, pixels = IMAGE_PIXELS["digits"]
    x = torch.tensor(d.data, dtype=torch.float32) / raw_max
    y = torch.tensor(d.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    if permute:  # the pixel order is fixed for every seed, as in permuted sequential MNIST
        x = x[:, torch.randperm(pixels, generator=torch.Generator().manual_seed(PERMUTE_SEED))]
    x, y = x[order].unsqueeze(-1), y[order]
    n_test = round(len(x) * test_fraction)
    return (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])
