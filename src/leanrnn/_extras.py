"""Which extra of ``pip install 'leanrnn[...]'`` provides each optional third-party module.

The core install loads and runs ``.lrnn`` models (numpy, numba, safetensors); ``train`` adds torch and
the training tools, ``hw`` the accelerator model's plots and configs, ``rtl`` Amaranth and the Yosys /
nextpnr toolchain, ``bench`` the benchmark peers. ``pyproject.toml`` lists the same modules per extra
(tests/test_packaging.py keeps the two in step). Torch-free: the CLI uses it whatever is installed.
"""
from __future__ import annotations

#: top-level module -> (its distribution on PyPI, the extras that install it; the first is the default)
MODULES = {
    "torch": ("torch", ("train",)),
    "sklearn": ("scikit-learn", ("train",)),
    "tqdm": ("tqdm", ("train",)),
    "matplotlib": ("matplotlib", ("train", "hw")),
    "yaml": ("pyyaml", ("train", "hw", "rtl")),
    "amaranth": ("amaranth", ("rtl",)),
    "onnx": ("onnx", ("bench",)),
    "onnxruntime": ("onnxruntime", ("bench",)),
}


def missing_extra(error: ModuleNotFoundError, prefer: str | None = None) -> tuple[str, str] | None:
    """``(distribution, extra)`` for an optional module that failed to import, or None when ``error``
    is about any other module (a bug, not a missing install). ``prefer``: the extra to name when
    several install the module (the one of the command that needs it)."""
    name = (error.name or "").partition(".")[0]
    if name not in MODULES:
        return None
    dist, extras = MODULES[name]
    return dist, prefer if prefer in extras else extras[0]


def install_hint(error: ModuleNotFoundError, prefer: str | None = None, who: str = "this command") -> str | None:
    """One line: what ``who`` (singular) needs and the command that installs it; None as in ``missing_extra``."""
    found = missing_extra(error, prefer)
    if found is None:
        return None
    dist, extra = found
    return f"{who} needs {dist}; install it with: pip install 'leanrnn[{extra}]'"
