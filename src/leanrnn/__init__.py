"""leanrnn: LSTMs with learned binary/ternary weights and learned state pruning, end to end.

``pip install leanrnn`` runs exported ``.lrnn`` models (``leanrnn.runtime``, torch-free); the extras
``[train]``, ``[hw]``, ``[rtl]``, ``[bench]`` add training, the accelerator model, the RTL toolchain and
the benchmark peers (see ``leanrnn._extras``).
"""
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so that ``import leanrnn.runtime`` stays torch-free.
    if name in ("LeanLSTM", "LeanLSTMCell"):
        try:
            from . import nn
        except ModuleNotFoundError as e:
            from ._extras import install_hint
            hint = install_hint(e, who=f"leanrnn.{name}")
            if hint is None:
                raise
            raise ModuleNotFoundError(hint, name=e.name) from e
        return getattr(nn, name)
    raise AttributeError(f"module 'leanrnn' has no attribute {name!r}")
