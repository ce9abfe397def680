"""``leanrnn demo | train | eval | data | plot``: training runs and what is read from them."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys
import typing
from pathlib import Path

from ..train.config import MAX_THREADS
from . import checks
from .checks import CliError, positive


def _config_fields() -> list:
    """TrainConfig fields that are command-line flags (scalars; dicts and lists stay recipe-only)."""
    from ..train import TrainConfig
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        t = hints[f.name]
        base = next((a for a in typing.get_args(t) if a is not type(None)), t)
        if base in (bool, int, float, str):
            out.append((f, base))
    return out


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, so recipes and flags can never drift apart."""
    for f, base in _config_fields():
        flag = "--" + f.name.replace("_", "-")
        helptext = f.metadata.get("help") or f"the {f.name} setting (see TrainConfig and recipes/)"
        if base is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=helptext)
            continue
        choices = f.metadata.get("choices") or None
        p.add_argument(flag, type=base if base is str else checks.number(base), default=None, choices=choices,
                       help=helptext,
                       metavar=None if choices else f.name.upper())


def _progress_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: on when stdout is a terminal)")


def _progress(args) -> bool:
    """Bars only on a terminal (logs of background runs stay free of carriage-return updates)."""
    return sys.stdout.isatty() if args.progress is None else args.progress


def add_parsers(sub) -> dict:
    d = sub.add_parser("demo", help="train a ternary, state-pruned char-LM beside full precision and compare")
    d.add_argument("--steps", type=positive(int), default=600, help="training steps per model (default 600)")
    d.add_argument("--hidden", type=positive(int), default=256, help="LSTM units (default 256)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--out", default="runs/demo", help="where the two runs are kept (default runs/demo)")
    d.add_argument("--json", metavar="FILE", help="also write the results as JSON (README's table comes from it)")
    d.add_argument("--markdown", metavar="FILE", help="print the README table from a JSON written by --json; "
                   "trains nothing")
    _progress_flag(d)

    t = sub.add_parser("train", help="train a model (settings from --recipe, then flags)")
    t.add_argument("--recipe", help="YAML file of settings (see recipes/)")
    t.add_argument("--out", help="run directory (checkpoints, metrics.jsonl, plots); default runs/TASK-DATA-WEIGHTS")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint, with its "
                   "own settings (only --threads, --device and --patience may be given)")
    _progress_flag(t)
    _add_config_flags(t)

    e = sub.add_parser("eval", help="evaluate a run on its test split (papers' protocol)")
    e.add_argument("run", help="run directory")
    e.add_argument("--split", choices=("test", "valid"), default="test", help="which split (default test)")
    e.add_argument("--checkpoint", choices=("best", "checkpoint"), default="best",
                   help="best validation model (default) or the last checkpoint")
    e.add_argument("--threads", type=positive(int, most=MAX_THREADS), help="torch CPU threads (default: torch's "
                   "choice, all cores; give 1 or 2 when several evaluations run at once)")

    dl = sub.add_parser("data", help="data sets")
    dsub = dl.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    dsub.add_parser("list", help="each data set, whether it is present, and how to make it present")

    pl = sub.add_parser("plot", help="plot the test metric of several evaluated runs against their state sparsity")
    pl.add_argument("runs", nargs="+", help="run directories evaluated with 'leanrnn eval'")
    pl.add_argument("-o", "--output", default="sparsity.png", help="image to write: .png, .pdf or .svg "
                    "(default sparsity.png)")
    return {"demo": demo, "train": train, "eval": evaluate, "data": data_list, "plot": plot}


def demo(args, argv) -> int:
    from .demo import is_results, markdown, not_ours, run
    if args.markdown:
        if not Path(args.markdown).is_file():  # missing, a folder, a device: its own message
            checks.text_file(args.markdown, "--markdown", "results/demo.json")
        try:
            print(markdown(json.loads(Path(args.markdown).read_text(encoding="utf-8"))))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise checks.CliError(f"--markdown {args.markdown} is not a JSON written by 'leanrnn demo --json'; "
                                  "run the demo with --json FILE first") from None
        return 0
    out = checks.output_dir(args.out, "--out")
    taken = not_ours(out)
    if taken:
        raise CliError(f"--out {out}: the demo would replace {taken[0]}, which an earlier demo did not write; "
                       f"choose another --out (e.g. --out {out}-new) or move it away")
    json_path = checks.output_file(args.json, "--json", "results/demo.json", suffixes=(".json",),
                                   ours=is_results) if args.json else None
    run(steps=args.steps, hidden=args.hidden, seed=args.seed, progress=_progress(args), out=out, json_path=json_path)
    return 0


def _overrides(args) -> dict:
    return {f.name: getattr(args, f.name) for f, _ in _config_fields() if getattr(args, f.name) is not None}


def _resume(args) -> int:
    from ..train import TrainConfig, Trainer, load_checkpoint
    overrides = _overrides(args)
    ignored = sorted(set(overrides) - {"threads", "device", "patience"})
    if ignored or args.recipe or args.out:
        drop = ", ".join("--" + n.replace("_", "-") for n in ignored) or ("--recipe" if args.recipe else "--out")
        raise CliError(f"--resume continues a run with its own settings; drop {drop}")
    run = checks.run_dir(args.resume, "train --resume")
    if not (run / "checkpoint.pt").is_file():
        raise CliError(f"{run} holds no checkpoint.pt to resume from, only best.pt (its best model, without the "
                       f"optimizer's state); evaluate or export it (leanrnn eval {run}), or train on from its "
                       f"weights with: leanrnn train --init-from {run} --out NEW_DIR and its settings")
    ck = load_checkpoint(run / "checkpoint.pt")
    with checks.foreign_checkpoint(run):
        cfg = TrainConfig.from_dict(ck["config"])
    for name in ("threads", "device", "patience"):  # where it runs and when it stops, not what it computes
        if name in overrides:
            setattr(cfg, name, overrides[name])
    cfg.validate()
    if "patience" in overrides:  # the run's record says what stopped it
        conf = _run_record(run, cfg)
        (run / "config.json").write_text(json.dumps({**conf, "patience": cfg.patience}, indent=1))
    Trainer(cfg, run, progress=_progress(args)).run(resume=True)
    return 0


def _run_record(run: Path, cfg) -> dict:
    """A run's config.json, or its checkpoint's settings where the file is missing; a file that is not
    a mapping is refused (it may hold the user's edits: not overwritten)."""
    p = run / "config.json"
    if not p.exists():
        return cfg.to_dict()
    try:
        conf = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        conf = None
    if not isinstance(conf, dict):
        raise CliError(f"{p} is not a JSON mapping of settings (corrupt); fix it, or delete it and resume again "
                       "(it is then written anew from the checkpoint's settings)")
    return conf


def _run_out(path: Path) -> Path:
    """The new run's directory: not a file, not another run, nothing of the trainer's overwritten."""
    if path.exists() and not path.is_dir():
        raise CliError(f"--out {path} is a file; give a directory path for the run")
    if (path / "checkpoint.pt").exists():
        raise CliError(f"{path} already holds a run; continue it with --resume {path} or choose another --out")
    clash = [f for f in checks.TRAINER_FILES if (path / f).exists()]
    if clash:
        raise CliError(f"--out {path} already holds {', '.join(clash)}; choose a new or empty directory")
    return checks.output_dir(path, "--out")


def _settings(args) -> dict:
    from ..train import load_recipe
    if not args.recipe:
        return {}
    checks.text_file(args.recipe, "recipe", "recipes/char-pystdlib.yaml")
    return load_recipe(args.recipe)


def _default_norm(settings: dict) -> str:
    """Choose the normalization of a low-bit model whose user chose none, and say which (unnormalized
    low-bit LSTMs train badly). Trained from scratch, the paper's per-step batch norm beat weight norm
    on the language models measured (results/README.md: on linux at 600 steps by 0.43 bits/char with
    90% zero states); fine-tuned from a trained run, the model keeps that run's normalization, or takes
    weight norm (no statistics to re-estimate: the demo's recipe) where the run had none."""
    if "bn_stats" in settings:  # --bn-stats alone asks for batch norm
        settings["batch_norm"] = True
        return (f"binary/ternary weights with --bn-stats {settings['bn_stats']}: batch norm is on with "
                f"{settings['bn_stats']} statistics")
    init = settings.get("init_from")
    if not init:
        settings["batch_norm"] = True
        return ("binary/ternary weights with no normalization chosen: per-step batch norm is on, as in the "
                "paper (--weight-norm or --bn-stats shared for a model with no per-step statistics)")
    try:
        base = json.loads((Path(init) / "config.json").read_text())
    except (OSError, ValueError):
        base = None
    if isinstance(base, dict) and base.get("batch_norm"):
        settings["batch_norm"] = True
        settings["bn_stats"] = base.get("bn_stats", "step")
        return (f"binary/ternary weights with no normalization chosen: batch norm ({settings['bn_stats']} "
                f"statistics) as in --init-from {init} (--weight-norm for weight norm instead)")
    settings["weight_norm"] = True
    return (f"binary/ternary weights fine-tuned from {init}, no normalization chosen: weight normalization "
            "is on (--batch-norm for the paper's batch norm)")


def train_config(args) -> tuple:
    """A new run's ``TrainConfig`` from ``--recipe`` then the flags, with the defaults that depend on
    other settings applied, and the notes that say which were applied (``leanrnn train`` prints them)."""
    from ..train import TrainConfig
    settings = _settings(args)
    settings.update(_overrides(args))
    notes = []
    if settings.get("weights", "fp") != "fp":
        if not {"batch_norm", "weight_norm"} & set(settings):
            notes.append(_default_norm(settings))
        elif not (settings.get("batch_norm") or settings.get("weight_norm")):
            notes.append("binary/ternary weights with neither batch norm nor weight norm (--no-batch-norm / "
                         "--no-weight-norm): such LSTMs train badly (results/README.md); leave both flags out for "
                         "the default")
    if (settings.get("task") == "classify" and settings.get("state_sparsity") and settings.get("layers", 1) == 1
            and "prune_output" not in settings):
        # A one-layer classifier's head reads the final state once per sequence: pruning it saves
        # nothing per step and cost about 15 points on digits (results/README.md): prune the fed-back state.
        settings["prune_output"] = False
        notes.append("a one-layer classifier with state pruning: only the state fed back is pruned, the "
                     "head reads the whole final state (--prune-output to prune what it reads too)")
    return TrainConfig.from_dict(settings).validate(), notes


def train(args, argv) -> int:
    from ..data import check_for_task
    from ..train import Trainer, epochs_done
    if args.out is not None and not args.out.strip():
        raise CliError("--out is empty; give the run's directory, or leave --out out for runs/TASK-DATA-WEIGHTS")
    if args.resume:
        return _resume(args)
    cfg, notes = train_config(args)
    runs = {flag: checks.run_dir(run, f"train {flag}") for flag, run in (("--init-from", cfg.init_from),
                                                                         ("--teacher", cfg.teacher)) if run}
    for note in notes:
        if os.environ.get("RANK", "0") == "0":
            print(f"note: {note}")
    for flag, run in runs.items():
        done = epochs_done(run)
        if done and done[0] < done[1] and os.environ.get("RANK", "0") == "0":
            # a run still training (or stopped) gives its best epoch so far: say so, it is easy to miss
            print(f"note: {flag} {run} has finished {done[0]} of its {done[1]} epochs; its best checkpoint "
                  "so far is used")
    out = Path(args.out or f"runs/{cfg.task}-{Path(cfg.data).name}-{cfg.weights}" + (
        f"-sp{cfg.state_sparsity:g}" if cfg.state_sparsity else ""))
    _run_out(out)
    for note in check_for_task(cfg.task, cfg.data, cfg.data_dir):
        if os.environ.get("RANK", "0") == "0":
            print(f"note: {note}")
    created = [a for a in (out, *out.parents) if not a.exists()]
    try:
        Trainer(cfg, out, progress=_progress(args)).run(on_start=lambda: (out / "command.txt").write_text(
            "leanrnn " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])) + "\n"))
    except Exception:  # an interrupt (Ctrl-C) keeps whatever the run wrote
        _forget(created)
        raise
    return 0


def _forget(created: list[Path]) -> None:
    """After a failure, remove the directories this command created if no checkpoint was saved in
    them: a run that stopped before saving anything leaves nothing behind."""
    import shutil
    if created and not any((created[0] / f).exists() for f in checks.RUN_FILES):
        shutil.rmtree(created[0], ignore_errors=True)
        for a in created[1:]:
            if a.is_dir() and not any(a.iterdir()):
                a.rmdir()


def evaluate(args, argv) -> int:
    from ..data import load_for_task
    from ..facts import METRIC
    from ..train import check_vocab, evaluate_split, load_run, model_bits
    run = checks.run_dir(args.run, "eval")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    with checks.foreign_checkpoint(run):
        cfg, model, vocab = load_run(run, args.checkpoint)
    if not all(t.isfinite().all() for t in model.state_dict().values() if t.is_floating_point()):
        raise CliError(f"the {args.checkpoint} model of {run} holds non-finite weights (NaN or inf): nothing to "
                       "evaluate, nothing written; restore a copy of the run, or retrain it with a lower --lr")
    data = load_for_task(cfg.task, cfg.data, cfg.data_dir, cfg.max_chars, cfg.vocab_size, cfg.permute, cfg.seed)
    check_vocab(run, vocab, data)
    m = evaluate_split(cfg, model, data, args.split)
    m.update(model_bits(model))
    metric = METRIC[cfg.task]
    m.update(metric_name=metric, split=args.split, weights=cfg.weights, batch_norm=cfg.batch_norm,
             target_state_sparsity=cfg.state_sparsity, task=cfg.task, data=cfg.data)
    if not (math.isfinite(m[metric]) and math.isfinite(m["state_sparsity"])):
        raise CliError(f"{run}: the {args.split} {metric} came out {m[metric]}; nothing written. The model's "
                       "outputs overflow: retrain it with a lower --lr")
    (run / f"eval_{args.split}.json").write_text(json.dumps(m, indent=1))
    print(f"{args.run}: {args.split} {metric} {m[metric]:.4f}  state sparsity {m['state_sparsity']:.3f}  "
          f"LSTM weights {m['lstm_weight_bits'] / 8 / 1024:.1f} KiB "
          f"({m['lstm_weight_bits_fp32'] / m['lstm_weight_bits']:.0f}x less than fp32)")
    return 0


def data_list(args, argv) -> int:
    from ..data import SOURCES
    print(f"{'name':<14}{'tasks':<18}{'present':<9}{'size':>10}  description / how to make it present")
    for s in SOURCES.values():
        here = s.present()
        n = s.size_bytes()
        size = "" if n is None else f"{n / 2**20:.1f} MiB"
        print(f"{s.name:<14}{','.join(s.tasks):<18}{'yes' if here else 'no':<9}{size:>10}  {s.description}")
        if not here:
            print(f"{'':<51}-> {s.make_present}")
    return 0


def _evaluated(run: Path) -> tuple:
    p = run / "eval_test.json"
    if not p.is_file():
        raise CliError(f"{p} is missing; run 'leanrnn eval {run}' first")
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
        point = run.name, m["state_sparsity"], m["metric_name"], m[m["metric_name"]]
    except (ValueError, KeyError, TypeError):
        raise CliError(f"{p} is not an evaluation leanrnn wrote; run 'leanrnn eval {run}' again") from None
    if not (isinstance(point[2], str) and all(_finite(v) for v in (point[1], point[3]))):
        raise CliError(f"{p} holds no finite {point[2]} and state sparsity (it has {point[3]!r} and {point[1]!r}); "
                       f"run 'leanrnn eval {run}' again, or leave the run out")
    return point


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plot(args, argv) -> int:
    from ..train import plot_points
    from ..train.plots import is_points_plot
    out = checks.output_file(args.output, "-o", "sparsity.png", suffixes=(".png", ".pdf", ".svg"),
                             ours=is_points_plot)
    points = [_evaluated(checks.run_dir(r, "plot")) for r in args.runs]
    print(plot_points(points, out))
    return 0
