"""``leanrnn export | inspect | bench``: packed model files and the CPU runtime."""
from __future__ import annotations

from . import checks
from .checks import positive
from .hw import MAX_BENCH_STEPS


def add_parsers(sub) -> dict:
    ex = sub.add_parser("export", help="write a run's model as a packed .lrnn file")
    ex.add_argument("run", help="run directory")
    ex.add_argument("-o", "--output", required=True, help="model file to write, e.g. model.lrnn")
    ex.add_argument("--checkpoint", choices=("best", "checkpoint"), default="best",
                    help="best validation model (default) or the last checkpoint")
    ex.add_argument("--compact", action="store_true", help="embedding and output layer in int8 with per-row "
                    "scales, normalization tables in fp16 (metric within 0.005 bits/char of the exact file)")

    ins = sub.add_parser("inspect", help="summarize a .lrnn file: parts, bytes, ratio to fp32")
    ins.add_argument("model", help=".lrnn file written by 'leanrnn export'")

    be = sub.add_parser("bench", help="per-step latency of one .lrnn model in the CPU runtime")
    be.add_argument("model", help=".lrnn file written by 'leanrnn export'")
    be.add_argument("--steps", type=positive(int, most=MAX_BENCH_STEPS), default=200,
                    help=f"timed steps (default 200, at most {MAX_BENCH_STEPS:,})")
    return {"export": export, "inspect": inspect, "bench": bench}


def export(args, argv) -> int:
    from ..export import ExportError, export_run, summary
    run = checks.run_dir(args.run, "export")
    out = checks.output_file(args.output, "-o", "model.lrnn", replace=("model",))
    with checks.foreign_checkpoint(run):
        try:
            export_run(run, out, args.checkpoint, compact=args.compact)
        except ExportError as e:  # a model the format cannot hold: one line, nothing written
            raise checks.CliError(f"cannot export {run}: {e}") from None
    print(summary(out))
    return 0


def inspect(args, argv) -> int:
    from ..export import summary
    print(summary(checks.model_file(args.model)))
    return 0


def bench(args, argv) -> int:
    from ..runtime import bench_model
    bench_model(str(checks.model_file(args.model)), steps=args.steps)
    return 0
