"""Checks of command-line paths and values, made before any work starts, so that bad input ends in
one line that names the problem and the fix (and nothing on disk has been touched yet)."""
from __future__ import annotations

import argparse
import contextlib
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

RUN_FILES = ("checkpoint.pt", "best.pt")
TRAINER_FILES = ("config.json", "metrics.jsonl", "steps.jsonl", "best.pt", "checkpoint.pt", "curves.png", "command.txt")
_KIND_NAMES = {int: "an integer", float: "a number"}


class CliError(Exception):
    """Bad command-line input; the message names the problem and the fix."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), still with exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def number(kind):
    """An argparse type: a ``kind`` number, refused in words a user reads (not "a int")."""
    def parse(s):
        try:
            return kind(s)
        except ValueError:
            pass
        hint = ""
        with contextlib.suppress(ValueError, OverflowError):
            if kind is int and float(s).is_integer():
                hint = f"; write it out: {int(float(s))}"
        raise argparse.ArgumentTypeError(f"{s!r} is not {_KIND_NAMES.get(kind, kind.__name__)}{hint}")
    return parse


def positive(kind, most=None):
    """An argparse type: a ``kind`` number > 0 and, with ``most``, at most ``most`` (a count that
    sizes memory up front)."""
    def parse(s):
        v = number(kind)(s)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{s!r} must be > 0")
        if most is not None and v > most:
            raise argparse.ArgumentTypeError(f"{s!r} is more than {most}, the most this command takes; give "
                                             f"at most {most}")
        return v
    return parse


def kind_of(path: Path) -> str:
    """What ``path`` is: missing, run (a training run directory), dir, special (a device, pipe or
    socket: never opened, a pipe would block), model (a safetensors/.lrnn file), checkpoint (a torch
    file), or file."""
    if not path.exists():
        return "missing"
    if path.is_dir():
        return "run" if any((path / f).is_file() for f in RUN_FILES) else "dir"
    if not path.is_file():
        return "special"
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return "file"
    # the model test first: a safetensors header length whose low byte is 0x80 looks like a pickle
    if len(head) == 9 and head[8:9] == b"{" and 0 < struct.unpack("<Q", head[:8])[0] < 100_000_000:
        return "model"
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "checkpoint"
    return "file"


def run_dir(path: str, command: str) -> Path:
    """A training run directory (holding best.pt or checkpoint.pt)."""
    p = Path(path)
    k = kind_of(p)
    if k == "run":
        return p
    fix = {"missing": f"run directory {p} does not exist; train one with: leanrnn train --out {p}",
           "dir": f"{p} holds no run (no best.pt or checkpoint.pt); train into it with: leanrnn train --out {p}",
           "model": f"{p} is a .lrnn model file, not a run directory; give 'leanrnn {command}' the run directory "
                    "it was exported from" + ("" if command.startswith("export") else
                                               f", or run the file with: leanrnn hw {p} / leanrnn bench {p}"),
           "checkpoint": f"{p} is a checkpoint file, not a run directory; give its folder: "
                         f"leanrnn {command} {p.parent}",
           "file": f"{p} is a file, not a run directory; give the folder 'leanrnn train --out' wrote",
           "special": f"{p} is a device or pipe, not a run directory; give the folder 'leanrnn train --out' wrote"}
    raise CliError(fix[k])


def model_file(path: str) -> Path:
    """A ``.lrnn`` model file; its contents are validated by the loader."""
    p = Path(path)
    k = kind_of(p)
    if k in ("model", "file"):
        if k == "file" and p.stat().st_size == 0:
            raise CliError(f"{p} is empty, not a .lrnn model; export a run again with: leanrnn export RUN_DIR -o {p}")
        return p
    fix = {"missing": f"model file {p} does not exist; create it with: leanrnn export RUN_DIR -o {p}",
           "run": f"{p} is a run directory, not a model file; export it first: leanrnn export {p} -o model.lrnn",
           "dir": f"{p} is a directory, not a .lrnn model file; give a file written by 'leanrnn export'",
           "special": f"{p} is a device or pipe, not a .lrnn model file; give a file written by 'leanrnn export'",
           "checkpoint": f"{p} is a training checkpoint, not a .lrnn model; export its run first: "
                         f"leanrnn export {p.parent} -o model.lrnn"}
    raise CliError(fix[k])


def model_or_run(path: str) -> Path:
    """A ``.lrnn`` file or a run directory (``leanrnn hw``)."""
    p = Path(path)
    if kind_of(p) == "run":
        return p
    if kind_of(p) == "missing":
        raise CliError(f"{p} does not exist; give a .lrnn file or a run directory")
    if kind_of(p) == "dir":
        raise CliError(f"{p} holds no run (no best.pt or checkpoint.pt) and is not a .lrnn file; give a run "
                       "directory or a file written by 'leanrnn export'")
    return model_file(path)


def text_file(path: str, what: str, example: str) -> Path:
    """A readable, non-empty text file (a recipe or a YAML config)."""
    p = Path(path)
    if not p.exists():
        raise CliError(f"{what} {p} does not exist; give a file such as {example}")
    if p.is_dir():
        raise CliError(f"{what} {p} is a directory; give a file in it, such as {example}")
    if not p.is_file():
        raise CliError(f"{what} {p} is a device or pipe, not a file; give a file such as {example}")
    data = p.read_bytes()
    if not data.strip():
        raise CliError(f"{what} {p} is empty; give a YAML file of setting: value lines, such as {example}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise CliError(f"{what} {p} is not a text file; give a YAML file such as {example}")
    return p


def yaml_mapping(path: str, what: str, example: str) -> dict:
    """The ``setting: value`` mapping of a YAML file."""
    import yaml
    p = text_file(path, what, example)
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise CliError(f"{what} {p} is not valid YAML ({' '.join(str(e).split())}); fix the file") from None
    if not isinstance(d, dict):
        raise CliError(f"{what} {p} must be a mapping of setting: value lines, not {type(d).__name__}")
    return d


def output_file(path: str, flag: str, example: str, suffixes: tuple[str, ...] = (),
                replace: tuple[str, ...] = (), ours: Callable[[Path], bool] | None = None) -> Path:
    """A file to write: its folder exists and takes new files, it is not a directory, its suffix is one
    of ``suffixes``, and an existing file is replaced only if it is of a kind in ``replace`` or ``ours``
    says this command wrote it (nothing else is lost)."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{flag} {p} is a directory; name a file in it, e.g. {flag} {p / example}")
    if not p.parent.is_dir():
        above = next((a for a in p.parents if a.exists()), None)
        if above is not None and not above.is_dir():
            raise CliError(f"{flag} {p}: {above} is a file, not a folder; name a file in an existing folder")
        raise CliError(f"{flag} {p}: folder {p.parent} does not exist; create it first (mkdir -p {p.parent}) "
                       "or name a file in an existing folder")
    if suffixes and p.suffix.lower() not in suffixes:
        raise CliError(f"{flag} {p}: cannot write a {p.suffix or 'suffix-less'} file; name it with one of "
                       f"{', '.join(suffixes)}, e.g. {flag} {p.with_suffix(suffixes[0]).name}")
    if p.exists() and not (kind_of(p) in replace or (ours is not None and p.is_file() and ours(p))):
        raise CliError(f"{flag} {p} exists and is not a file this command wrote; choose a new name, e.g. "
                       f"{flag} {p.with_stem(p.stem + '-new').name}, or move it away")
    try:  # a folder that takes no files (/proc, read-only) fails now, not after the work
        with tempfile.TemporaryFile(dir=p.parent):
            pass
    except OSError as e:
        raise CliError(f"{flag} {p}: cannot create files in {p.parent} ({(e.strerror or str(e)).lower()}); "
                       "name a file in a folder you can write to") from None
    return p


def output_dir(path: str | Path, flag: str) -> Path:
    """A folder to write into (created if missing)."""
    if not str(path).strip():
        raise CliError(f"{flag} is empty; give a folder path")
    p = Path(path)
    for a in (p, *p.parents):
        if a.exists():
            if not a.is_dir():
                where = "" if a == p else f": {a}"
                raise CliError(f"{flag} {p}{where} is a file, not a folder; give a folder path")
            break
    return p


@contextlib.contextmanager
def foreign_checkpoint(run: Path):
    """Turn a checkpoint that this version cannot rebuild into one clear error: settings or weights
    this version does not know (another version wrote it), or ones that contradict themselves
    (corrupt: no version writes them)."""
    from ..train import ConfigError
    from ..train.config import UnknownSetting
    other = "retrain with this version, or use the version that wrote it"
    corrupt = "restore a copy of the run, or retrain it"
    try:
        yield
    except UnknownSetting as e:
        raise CliError(f"the checkpoint in {run} was written by another leanrnn version: "
                       f"{' '.join(str(e).split())}; {other}") from None
    except ConfigError as e:
        raise CliError(f"the checkpoint in {run} is corrupt: {' '.join(str(e).split())}; {corrupt}") from None
    except RuntimeError as e:
        if "state_dict" not in str(e):
            raise
        lines = [x.strip() for x in str(e).strip().splitlines()]
        if "size mismatch" in str(e) and not any(x.startswith(("Missing key", "Unexpected key")) for x in lines):
            detail = next(x for x in lines if x.startswith("size mismatch"))
            raise CliError(f"the checkpoint in {run} is corrupt: its weights do not fit its own settings "
                           f"({detail.rstrip('.')}); {corrupt}") from None
        raise CliError(f"the checkpoint in {run} does not fit this leanrnn version's model ({lines[0].rstrip(':')}); "
                       f"{other}") from None
