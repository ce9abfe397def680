"""The ``leanrnn`` command line.

Commands (each parsed and run by one module of this package, calling its layer's public functions):

* ``demo``     train a ternary, state-pruned char-LM beside full precision and compare (``train``)
* ``train``    train a model from a recipe and flags, or ``--resume`` a run (``train``)
* ``eval``     evaluate a run on its test or validation split (``train``)
* ``data list`` each data set, whether it is present, and how to make it present (``train``)
* ``plot``     the test metric of evaluated runs against their state sparsity (``train``)
* ``export``   write a run's model as a packed ``.lrnn`` file (``deploy``)
* ``inspect``  summarize a ``.lrnn`` file (``deploy``)
* ``bench``    per-step latency of a ``.lrnn`` model in the CPU runtime (``deploy``)
* ``hw``       cycles, energy and memory of a trained model on the accelerator model (``hw``)
* ``rtl generate | fixed | report``  Verilog of the datapath, fixed-point accuracy, synthesis (``rtl``)

Bad input ends in one line on stderr, ``leanrnn: error: <problem>; <fix>``, and exit status 2; so does
a command whose optional dependencies are not installed (the line names the extra that installs them).
"""
from __future__ import annotations

import importlib
import os
import sys

from .. import __version__
from .._extras import install_hint, missing_extra
from . import deploy, hw, rtl, train
from .checks import CliError, Parser

GROUPS = (train, deploy, hw, rtl)


def build_parser() -> tuple[Parser, dict]:
    """The top parser and the dispatch table ``{command: handler(args, argv) -> exit status}``."""
    p = Parser(prog="leanrnn", description="LSTMs with learned binary/ternary weights and learned state pruning.")
    p.add_argument("--version", action="version", version=f"leanrnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    table = {}
    p.unavailable = {}  # group -> the ModuleNotFoundError of a missing extra its flags need
    for group in GROUPS:
        name = _group(group.__name__)
        try:
            table.update(group.add_parsers(sub))
        except ModuleNotFoundError as e:
            if install_hint(e, name) is None:
                raise
            p.unavailable[name] = e
    if p.unavailable:
        p.epilog = "; ".join("the {} commands need {}; install it with: pip install 'leanrnn[{}]'".format(
            g, *missing_extra(e, g)) for g, e in p.unavailable.items())
    return p, table


def _group(module: str) -> str:
    """``leanrnn.cli.hw`` -> ``hw``: the command group, which is also the extra it prefers."""
    return module.rpartition(".")[2]


#: package -> its error types that mean bad input
ERRORS = {"data": ("DataError",), "train": ("ConfigError", "TrainingError", "CheckpointError"),
          "export": ("ModelFormatError", "ExportError"), "hw": ("HardwareConfigError",)}


def _errors() -> tuple:
    """Every error type that means bad input (or missing data), not a bug. A package that cannot be
    imported here (its extra is not installed) has raised none of them."""
    types = [CliError, OSError]
    for package, names in ERRORS.items():
        try:
            module = importlib.import_module(f"..{package}", __package__)
        except ModuleNotFoundError as e:
            if install_hint(e) is None:
                raise
            continue
        types += [getattr(module, n) for n in names]
    return tuple(types)


def _line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror.lower()}; check the path and its permissions"
    return " ".join(str(e).split()) or type(e).__name__


def _fail(line: str) -> int:
    print(f"leanrnn: error: {line}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser, table = build_parser()
    if parser.unavailable:
        words = sys.argv[1:] if argv is None else list(argv)
        command = next((w for w in words if not w.startswith("-")), None)
        if command is not None and command not in table:
            group, error = next(iter(parser.unavailable.items()))
            return _fail(install_hint(error, group))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = table[args.command]
    try:
        return handler(args, argv)
    except ModuleNotFoundError as e:
        hint = install_hint(e, _group(handler.__module__))
        if hint is None:
            raise
        return _fail(hint)
    except _errors() as e:
        return _fail(_line(e))


def entry() -> None:
    """The ``leanrnn`` script and ``python -m leanrnn.cli``. A torchrun rank (``WORLD_SIZE`` > 1) leaves
    through ``os._exit`` once its output is flushed: the trainer has closed the process group by then,
    but gloo's worker threads can still be torn down during interpreter finalization, where they abort
    a finished rank ("terminate called without an active exception")."""
    rc = main()
    if os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1"):  # torchrun sets it; no int() to fail
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc or 0)
    sys.exit(rc)


if __name__ == "__main__":
    entry()
