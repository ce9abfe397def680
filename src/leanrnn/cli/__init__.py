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

Bad input ends in one line on stderr, ``leanrnn: error: <problem>; <fix>``, and exit status 2.
"""
from __future__ import annotations

import sys

from .. import __version__
from . import deploy, hw, rtl, train
from .checks import CliError, Parser

GROUPS = (train, deploy, hw, rtl)


def build_parser() -> tuple[Parser, dict]:
    """The top parser and the dispatch table ``{command: handler(args, argv) -> exit status}``."""
    p = Parser(prog="leanrnn", description="LSTMs with learned binary/ternary weights and learned state pruning.")
    p.add_argument("--version", action="version", version=f"leanrnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    table = {}
    for group in GROUPS:
        table.update(group.add_parsers(sub))
    return p, table


def _errors() -> tuple:
    """Every error type that means bad input (or missing data), not a bug."""
    from ..data import DataError
    from ..export import ModelFormatError
    from ..hw import HardwareConfigError
    from ..train import CheckpointError, ConfigError, TrainingError
    return (CliError, DataError, ConfigError, TrainingError, CheckpointError, ModelFormatError,
            HardwareConfigError, OSError)


def _line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror.lower()}; check the path and its permissions"
    return " ".join(str(e).split()) or type(e).__name__


def main(argv=None) -> int:
    parser, table = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return table[args.command](args, argv)
    except _errors() as e:
        print(f"leanrnn: error: {_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
