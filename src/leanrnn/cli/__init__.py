"""The ``leanrnn`` command line: demo, train, eval, data list, plot."""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import typing
from pathlib import Path

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


_CHOICES = {"task": ("char-lm", "word-lm", "classify"), "weights": ("fp", "binary", "ternary"),
            "optimizer": ("adam", "sgd")}
_HELP = {"task": "what to train", "data": "data set name (see 'leanrnn data list') or a path to text",
         "data_dir": "directory or archive of a data set that is not at its default place",
         "weights": "LSTM weight mode", "state_sparsity": "target fraction of zero hidden states in [0, 1)",
         "lr_final": "decay the learning rate geometrically per epoch to this value",
         "max_chars": "cap on the training text", "steps_per_epoch": "cap on the steps of one epoch",
         "checkpoint_every": "steps between checkpoints"}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, so recipes and flags can never drift apart."""
    from ..train import TrainConfig
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("extra", "note"):
            continue
        flag = "--" + f.name.replace("_", "-")
        t = hints[f.name]
        if t is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_HELP.get(f.name))
            continue
        base = next((a for a in typing.get_args(t) if a is not type(None)), t)
        p.add_argument(flag, type=base, default=None, choices=_CHOICES.get(f.name), help=_HELP.get(f.name),
                       metavar=None if f.name in _CHOICES else f.name.upper())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="leanrnn", description="LSTMs with learned binary/ternary weights and "
                                "learned state pruning.")
    p.add_argument("--version", action="version", version=f"leanrnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="train a ternary, state-pruned char-LM beside full precision and compare")
    d.add_argument("--steps", type=_positive(int), default=600, help="training steps per model (default 600)")
    d.add_argument("--hidden", type=_positive(int), default=256, help="LSTM units (default 256)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="runs/demo", help="where the two runs are kept (default runs/demo)")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")

    t = sub.add_parser("train", help="train a model (settings from --recipe, then flags)")
    t.add_argument("--recipe", help="YAML file of settings (see recipes/)")
    t.add_argument("--out", help="run directory (checkpoints, metrics.jsonl, plots)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_config_flags(t)

    e = sub.add_parser("eval", help="evaluate a run on its test split (papers' protocol)")
    e.add_argument("run", help="run directory")
    e.add_argument("--split", choices=("test", "valid"), default="test")
    e.add_argument("--checkpoint", choices=("best", "checkpoint"), default="best",
                   help="best validation model (default) or the last checkpoint")

    dl = sub.add_parser("data", help="data sets")
    dsub = dl.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dsub.add_parser("list", help="each data set, whether it is present, and how to make it present")

    ex = sub.add_parser("export", help="write a run's model as a packed .lrnn file")
    ex.add_argument("run", help="run directory")
    ex.add_argument("-o", "--output", required=True, help="model file to write, e.g. model.lrnn")
    ex.add_argument("--checkpoint", choices=("best", "checkpoint"), default="best")

    ins = sub.add_parser("inspect", help="summarize a .lrnn file: parts, bytes, ratio to fp32")
    ins.add_argument("model")

    be = sub.add_parser("bench", help="per-step latency of one .lrnn model in the CPU runtime")
    be.add_argument("model")
    be.add_argument("--steps", type=_positive(int), default=200)

    hw = sub.add_parser("hw", help="cycles, energy and memory of a trained model on the accelerator model")
    hw.add_argument("model", help="a .lrnn file or a run directory")
    hw.add_argument("--config", help="accelerator YAML (see leanrnn.hw.Accel); default: 16x16 column array")
    hw.add_argument("--steps", type=_positive(int), default=200, help="time steps of test data to trace")
    hw.add_argument("--out", default=None, help="folder for the report JSON and plots (default: beside the model)")

    rtl = sub.add_parser("rtl", help="synthesizable Verilog of the accelerator datapath (Amaranth)")
    rsub = rtl.add_subparsers(dest="rtl_command", metavar="SUBCOMMAND")
    rg = rsub.add_parser("generate", help="write the zero-skip matrix-vector block as Verilog")
    rg.add_argument("--config", help="accelerator YAML: rows = pes x lanes, weight_bits 1 or 2, act_bits")
    rg.add_argument("--columns", type=_positive(int), default=64, help="state entries (weight columns)")
    rg.add_argument("--model", help="a small .lrnn model: write its whole first-layer time step (weights and "
                    "folded batch norm in ROMs) instead of the bare matrix-vector block")
    rg.add_argument("-o", "--output", default="build", help="output folder")
    rf = rsub.add_parser("fixed", help="accuracy of the fixed-point datapath against the float runtime")
    rf.add_argument("model", help="a one-layer binary/ternary char- or word-LM .lrnn file")
    rf.add_argument("--steps", type=_positive(int), default=300)
    rr = rsub.add_parser("report", help="Yosys synthesis (generic gates): PE variants, dense vs zero-skip")
    rr.add_argument("-o", "--output", default="build/synth")

    pl = sub.add_parser("plot", help="plot the test metric of several evaluated runs against their state sparsity")
    pl.add_argument("runs", nargs="+", help="run directories evaluated with 'leanrnn eval'")
    pl.add_argument("-o", "--output", default="sparsity.png")
    return p


def _train(args, argv=None) -> int:
    from ..train import ConfigError, TrainConfig, Trainer, load_recipe
    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("command", "recipe", "out", "resume", "no_progress") and v is not None}
    if args.resume:
        ignored = sorted(set(overrides) - {"threads"})
        if ignored or args.recipe:
            raise ConfigError(f"--resume continues a run with its own settings; drop {', '.join(ignored) or '--recipe'}")
        from ..train import load_checkpoint
        ck = load_checkpoint(Path(args.resume) / "checkpoint.pt")
        cfg = TrainConfig.from_dict(ck["config"])
        if "threads" in overrides:
            cfg.threads = overrides["threads"]
        Trainer(cfg, args.resume, progress=not args.no_progress).run(resume=True)
        return 0
    settings = load_recipe(args.recipe) if args.recipe else {}
    settings.update(overrides)
    cfg = TrainConfig.from_dict(settings)
    out = args.out or f"runs/{cfg.task}-{Path(cfg.data).name}-{cfg.weights}" + (
        f"-sp{cfg.state_sparsity:g}" if cfg.state_sparsity else "")
    trainer = Trainer(cfg, out, progress=not args.no_progress)
    trainer.run(on_start=lambda: (Path(out) / "command.txt").write_text(
        "leanrnn " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])) + "\n"))
    return 0


def _eval(args) -> int:
    from ..train import evaluate_split, load_data, load_run
    from ..train.trainer import METRIC, model_bits
    cfg, model, _ = load_run(args.run, args.checkpoint)
    data = load_data(cfg)
    m = evaluate_split(cfg, model, data, args.split)
    m.update(model_bits(model))
    metric = METRIC[cfg.task]
    m.update(metric_name=metric, split=args.split, weights=cfg.weights, batch_norm=cfg.batch_norm,
             target_state_sparsity=cfg.state_sparsity, task=cfg.task, data=cfg.data)
    (Path(args.run) / f"eval_{args.split}.json").write_text(json.dumps(m, indent=1))
    print(f"{args.run}: {args.split} {metric} {m[metric]:.4f}  state sparsity {m['state_sparsity']:.3f}  "
          f"LSTM weights {m['lstm_weight_bits'] / 8 / 1024:.1f} KiB "
          f"({m['lstm_weight_bits_fp32'] / m['lstm_weight_bits']:.0f}x less than fp32)")
    return 0


def _data_list(args) -> int:
    from ..data import SOURCES
    print(f"{'name':<14}{'tasks':<18}{'present':<9}{'size':>10}  description / how to make it present")
    for s in SOURCES.values():
        here = s.present()
        path = s.path()
        size = ""
        if here and path is not None and path.is_file():
            size = f"{path.stat().st_size / 2**20:.1f} MiB"
        elif here and path is not None and path.is_dir() and s.name != "pystdlib":
            size = f"{sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 2**20:.1f} MiB"
        print(f"{s.name:<14}{','.join(s.tasks):<18}{'yes' if here else 'no':<9}{size:>10}  {s.description}")
        if not here:
            print(f"{'':<51}-> {s.make_present}")
    return 0


def _plot(args) -> int:
    from ..train.plots import plot_sparsity
    pts, metric = [], None
    for r in args.runs:
        p = Path(r) / "eval_test.json"
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing; run 'leanrnn eval {r}' first")
        m = json.loads(p.read_text())
        metric = m["metric_name"]
        pts.append((Path(r).name, m["state_sparsity"], m[metric]))
    print(plot_sparsity(pts, metric, args.output))
    return 0


def _hw(args) -> int:
    import tempfile

    from ..hw import load_accel
    from ..hw.report import analyse, plot_report, print_report, record_masks
    from ..runtime import Model
    src = Path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        path = src
        if src.is_dir():
            from ..export.exporter import export_run
            path = export_run(src, Path(tmp) / "model.lrnn")
        m = Model.load(path)
    inputs = _trace_inputs(m, args.steps)
    masks, xm = record_masks(m, inputs)
    res = analyse(m.header, masks, xm, load_accel(args.config) if args.config else None)
    print_report(res)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent)
    paths = plot_report(res, out)
    (out / "hw_report.json").write_text(json.dumps(res, indent=1, default=float))
    print("wrote " + ", ".join(str(p) for p in paths + [out / "hw_report.json"]))
    return 0


def _rtl(args, parser) -> int:
    import numpy as np

    from ..hw import Accel, HardwareConfigError, load_accel
    if args.rtl_command == "generate" and args.model:
        from ..export import read_lrnn
        from ..hw.fixed import FixedLayer
        from ..rtl.step import LstmStep
        from ..rtl.synth import to_verilog
        header, tensors = read_lrnn(args.model)
        layer = FixedLayer.from_export(header, tensors, 0)
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "leanrnn_lstm_step.v").write_text(to_verilog(LstmStep(layer, header["layers"][0]["weights"]),
                                                            "leanrnn_lstm_step"))
        print(f"wrote {out / 'leanrnn_lstm_step.v'}: input {layer.codes_ih.shape[0]}, hidden {layer.hidden}, "
              f"{layer.s_ih.shape[0]} batch-norm steps")
        return 0
    if args.rtl_command == "fixed":
        from ..data import load_text
        from ..hw.fixed import FixedFormat, compare_with_float
        from ..runtime import Model
        m = Model.load(args.model)
        cfg = m.header.get("config", {})
        try:
            ids = load_text(cfg["data"], "char" if cfg["task"] == "char-lm" else "word", cfg.get("data_dir"),
                            cfg.get("max_chars")).test[: args.steps].numpy()
        except Exception as e:  # noqa: BLE001
            print(f"note: random tokens ({type(e).__name__}: {e})")
            ids = np.random.default_rng(0).integers(0, m.input["vocab"], args.steps)
        for fmt in (FixedFormat(act_bits=12, act_frac=9, c_bits=20, c_frac=13, lut_bits=9, lut_frac=5), FixedFormat()):
            r = compare_with_float(m, ids, fmt=fmt)
            print(f"{fmt.act_bits}-bit states ({fmt.act_frac} fractional), {1 << fmt.lut_bits}-entry tables: "
                  f"mean |h error| {r['mean_abs_h_error']:.4f}, max {r['max_abs_h_error']:.3f}, "
                  f"next-token KL {r['mean_kl_bits']:.4f} bits, top-1 agreement {r['top1_agreement']:.1%} "
                  f"over {r['steps']} steps")
        return 0
    if args.rtl_command == "generate":
        from ..rtl import SparseMatVec
        from ..rtl.synth import to_verilog
        a = load_accel(args.config) if args.config else Accel(pes=1, lanes=16)
        if a.weight_bits not in (1, 2):
            raise HardwareConfigError(f"the RTL datapath is multiplier-free: weight_bits must be 1 or 2, got {a.weight_bits}")
        mode = "ternary" if a.weight_bits == 2 else "binary"
        zero = [[0 if mode == "ternary" else 1] * a.macs for _ in range(args.columns)]
        acc = a.acc_bits or a.act_bits + 1 + max(1, (args.columns - 1).bit_length())
        dut = SparseMatVec(zero, mode, a.act_bits, acc, skip=a.skip_zero_states)
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "leanrnn_matvec.v").write_text(to_verilog(dut, "leanrnn_matvec"))
        print(f"wrote {out / 'leanrnn_matvec.v'}: {mode} {args.columns} columns x {a.macs} rows, "
              f"{a.act_bits}-bit states, {acc}-bit accumulators, zero-skip {a.skip_zero_states}")
        return 0
    if args.rtl_command == "report":
        from ..rtl.synth import format_report, report
        print(format_report(report(args.output)))
        return 0
    parser.parse_args(["rtl", "--help"])
    return 2


def _trace_inputs(m, steps: int):
    """The first ``steps`` test tokens (or the first test sequence) of the model's own data set; random
    inputs with a note when that data set is not present."""
    import numpy as np
    try:
        from ..train import TrainConfig, load_data
        cfg = TrainConfig.from_dict(m.header["config"])
        data = load_data(cfg)
        if cfg.task == "classify":
            return data["test"][0][0].numpy()
        return data.test[:steps].numpy()
    except Exception as e:  # noqa: BLE001 - any missing or foreign data falls back to random inputs
        print(f"note: tracing random inputs ({type(e).__name__}: {e})")
        rng = np.random.default_rng(0)
        if m.input["kind"] == "dense":
            return rng.random((steps, m.input["size"]), dtype=np.float32)
        return rng.integers(0, m.input["vocab"], steps)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from ..data import DataError
    from ..export.format import ModelFormatError
    from ..hw.config import HardwareConfigError
    from ..train import CheckpointError, ConfigError, TrainingError
    try:
        if args.command == "demo":
            from .demo import run
            run(steps=args.steps, hidden=args.hidden, seed=args.seed, progress=not args.no_progress, out=args.out)
        elif args.command == "train":
            return _train(args, argv)
        elif args.command == "eval":
            return _eval(args)
        elif args.command == "data":
            if args.data_command != "list":
                parser.parse_args(["data", "--help"])
            return _data_list(args)
        elif args.command == "plot":
            return _plot(args)
        elif args.command == "export":
            from ..export.exporter import export_run, summary
            export_run(args.run, args.output, args.checkpoint)
            print(summary(args.output))
        elif args.command == "inspect":
            from ..export.exporter import summary
            print(summary(args.model))
        elif args.command == "hw":
            return _hw(args)
        elif args.command == "rtl":
            return _rtl(args, parser)
        elif args.command == "bench":
            from ..runtime.bench import bench_model
            bench_model(args.model, steps=args.steps)
    except (DataError, ConfigError, TrainingError, CheckpointError, FileNotFoundError, ModelFormatError,
            HardwareConfigError) as e:
        print(f"leanrnn: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
