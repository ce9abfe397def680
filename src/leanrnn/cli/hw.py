"""``leanrnn hw``: a trained model on the accelerator model."""
from __future__ import annotations

from pathlib import Path

from . import checks
from .checks import positive


def add_parsers(sub) -> dict:
    hw = sub.add_parser("hw", help="cycles, energy and memory of a trained model on the accelerator model")
    hw.add_argument("model", help="a .lrnn file or a run directory")
    hw.add_argument("--config", help="accelerator YAML (see leanrnn.hw.Accel); default: 16x16 column array")
    hw.add_argument("--steps", type=positive(int), default=200, help="time steps of test data to trace")
    hw.add_argument("--out", default=None, help="folder for the report JSON and plots (default: beside the model)")
    return {"hw": run}


def accel_from(path: str | None):
    """The accelerator of a YAML file, or None (the default for the model)."""
    from ..hw import Accel
    if path is None:
        return None
    settings = checks.yaml_mapping(path, "accelerator config", "accel.yaml (lines like pes: 16)")
    _check_types(settings, Accel, path)
    return Accel.from_dict(settings)


def _check_types(settings: dict, cls, path: str) -> None:
    """Numbers where the accelerator's fields are numbers: a YAML ``pes: many`` names its field."""
    import dataclasses
    import typing
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in settings or settings[f.name] is None:
            continue
        t = next((a for a in typing.get_args(hints[f.name]) if a is not type(None)), hints[f.name])
        want = {int: (int, "an integer"), float: ((int, float), "a number"), bool: (bool, "true or false"),
                str: (str, "a string")}.get(t)
        v = settings[f.name]
        if want and (not isinstance(v, want[0]) or (isinstance(v, bool) and t is not bool)):
            raise checks.CliError(f"accelerator config {path}: {f.name}={v!r} must be {want[1]}; fix the file "
                                  "(see leanrnn.hw.Accel)")


def run(args, argv) -> int:
    from ..hw import analyse_model, load_model, print_report, write_report
    src = checks.model_or_run(args.model)
    accel = accel_from(args.config)
    out = checks.output_dir(args.out or (src if src.is_dir() else src.parent), "--out")
    res = analyse_model(load_model(src), args.steps, accel)
    print_report(res)
    print("wrote " + ", ".join(str(p) for p in write_report(res, Path(out))))
    return 0
