"""The ``leanrnn`` command line."""
from __future__ import annotations

import argparse
import sys

from .. import __version__


def _positive(kind):
    def parse(s):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not a {kind.__name__}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{s!r} must be > 0")
        return v
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="leanrnn", description="LSTMs with learned binary/ternary weights and "
                                "learned state pruning.")
    p.add_argument("--version", action="version", version=f"leanrnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="train a ternary, state-pruned char-LM beside full precision and compare")
    d.add_argument("--steps", type=_positive(int), default=600, help="training steps per model (default 600)")
    d.add_argument("--hidden", type=_positive(int), default=256, help="LSTM units (default 256)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from .demo import run
        run(steps=args.steps, hidden=args.hidden, seed=args.seed, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
