"""A task's data from its settings: one loader for training, evaluation and tracing, and a cheap
check that the data are there, made before a run directory is created."""
from __future__ import annotations

import os
from pathlib import Path

from .sources import SOURCES, DataError, get_source

LEVELS = {"char-lm": "char", "word-lm": "word"}


def load_for_task(task: str, data: str, data_dir: str | None = None, max_chars: int | None = None,
                  vocab_size: int = 10000, permute: bool = False, seed: int = 0, max_examples: int | None = None):
    """``{split: (x, y)}`` for ``classify`` (``max_examples``: the first training sequences only), a
    ``TextCorpus`` for the language-model tasks."""
    from .images import load_images
    from .text import load_text
    if task == "classify":
        splits = load_images(data, data_dir, permute=permute, seed=seed)
        if max_examples is not None:
            x, y = splits["train"]
            splits["train"] = (x[:max_examples], y[:max_examples])
        return splits
    if task not in LEVELS:
        raise DataError(f"task {task!r} has no data loader; use classify, {' or '.join(LEVELS)}")
    return load_text(data, LEVELS[task], data_dir, max_chars, vocab_size)


def check_for_task(task: str, data: str, data_dir: str | None = None) -> list[str]:
    """Raise ``DataError`` if ``data`` cannot serve ``task`` (unknown name, wrong task, not present,
    a path that is missing, empty or not text); return notes worth printing (files skipped)."""
    from .text import is_text, scan_text_dir
    if data in SOURCES:
        s = SOURCES[data]
        if task not in s.tasks:
            raise DataError(f"data set {data!r} serves {', '.join(s.tasks)}, not {task}; choose --task "
                            f"{s.tasks[0]} or a {task} data set (see 'leanrnn data list')")
        if not (s.always and data_dir is None):
            s.require(data_dir)
        return []
    p = Path(data)
    if not p.exists():
        if "/" in data or os.sep in data or p.suffix:
            raise DataError(f"{p} does not exist; give an existing text file or folder, or a data set name "
                            "(see 'leanrnn data list')")
        get_source(data)  # raises: neither a known name nor a path
    if task == "classify":
        if not p.is_dir():
            raise DataError(f"{p} is not a folder of MNIST-format IDX files; classify reads digits, "
                            "fashion-mnist, mnist or such a folder")
        return []
    if p.is_file():
        if p.stat().st_size == 0:
            raise DataError(f"{p} is empty; give a text file with some text in it")
        if not is_text(p):
            raise DataError(f"{p} is not a text file; give a text file or a folder of text files")
        return []
    found, skipped = scan_text_dir(p)
    if not found:
        raise DataError(f"{p} holds no text files" + (f" ({len(skipped)} others skipped)" if skipped else "")
                        + "; give a text file or a folder of text files")
    if not any(f.stat().st_size for f in found):
        raise DataError(f"the text files under {p} are all empty; give some text")
    if skipped:
        names = ", ".join(f.relative_to(p).as_posix() for f in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        return [f"skipped {len(skipped)} file(s) under {p} that are not text ({names})"]
    return []
