"""The embedded default character corpus: the running Python's own standard-library sources.

Always present wherever leanrnn runs, so the main job and the tests need no download. Files are split
by a hash of their relative path (90/5/5 train/valid/test), which is stable across machines and
Python versions; the vocabulary is fixed (tab, newline, printable ASCII, and ``<unk>`` for the rest)
so a model trained on one Python version reads another's sources.
"""
from __future__ import annotations

import sysconfig
import zlib
from pathlib import Path

import torch

VOCAB = ["<unk>", "\t", "\n"] + [chr(c) for c in range(32, 127)]
_INDEX = {ch: i for i, ch in enumerate(VOCAB)}
# Tests, vendored and generated code (``encodings/`` is mostly machine-written codec tables) would
# make the corpus less like the Python people write.
_SKIP_DIRS = {"site-packages", "test", "tests", "idlelib", "__pycache__", "lib2to3", "encodings"}
_ROOT_FIX = "give a folder of .py files as the data directory (--data-dir DIR; root= in Python), or none for " \
            "the running Python's standard library"


def stdlib_files(root: str | Path | None = None) -> list[Path]:
    """The corpus files in a fixed pseudo-random order (by a hash of the path), so that a size cap
    takes a sample of the whole library rather than its alphabetically first packages."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not (_SKIP_DIRS & set(p.relative_to(root).parts[:-1]))]
    return sorted(files, key=lambda p: (zlib.crc32(p.relative_to(root).as_posix().encode(), 7), p.name))


def split_of(rel_path: str) -> str:
    b = zlib.crc32(rel_path.encode()) % 100
    return "train" if b < 90 else ("valid" if b < 95 else "test")


def encode(text: str) -> torch.Tensor:
    return torch.tensor([_INDEX.get(ch, 0) for ch in text], dtype=torch.uint8)


def decode(ids) -> str:
    return "".join(VOCAB[int(i)] for i in ids)


def load_pystdlib(split: str = "train", max_chars: int | None = None, root: str | Path | None = None) -> torch.Tensor:
    """Character ids (uint8) of one split, files concatenated in corpus order, cut at ``max_chars``."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split={split!r} must be 'train', 'valid' or 'test'")
    root = Path(root or sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"{root} {'is not a folder' if root.exists() else 'does not exist'}; {_ROOT_FIX}")
    parts, total, files = [], 0, stdlib_files(root)
    for p in files:
        if split_of(p.relative_to(root).as_posix()) != split:
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    if not files:
        raise FileNotFoundError(f"no Python sources under {root} (.py files outside {', '.join(sorted(_SKIP_DIRS))} "
                                f"folders); {_ROOT_FIX}")
    if not parts:
        raise FileNotFoundError(f"none of the {len(files)} Python sources under {root} falls in the {split} split "
                                "(90/5/5 by a hash of the path); give a folder with more .py files")
    text = "".join(parts)
    return encode(text if max_chars is None else text[:max_chars])
