"""``leanrnn hw``: a trained model on the accelerator model."""
from __future__ import annotations

import tempfile
from pathlib import Path

from . import checks
from .checks import positive

#: most time steps ``hw`` traces (the simulation walks each one) and ``bench`` times
MAX_HW_STEPS, MAX_BENCH_STEPS = 100_000, 1_000_000


def add_parsers(sub) -> dict:
    hw = sub.add_parser("hw", help="cycles, energy and memory of a trained model on the accelerator model")
    hw.add_argument("model", help="a .lrnn file or a run directory")
    hw.add_argument("--config", help="accelerator YAML (see leanrnn.hw.Accel); default: 16x16 column array")
    hw.add_argument("--steps", type=positive(int, most=MAX_HW_STEPS), default=200,
                    help=f"time steps of test data to trace (at most {MAX_HW_STEPS:,})")
    hw.add_argument("--out", default=None, help="folder for the report JSON and plots (default: beside the model)")
    return {"hw": run}


def accel_from(path: str | None):
    """The accelerator of a YAML file, or None (the default for the model)."""
    from ..hw import Accel, HardwareConfigError
    if path is None:
        return None
    settings = checks.yaml_mapping(path, "accelerator config", "accel.yaml (lines like pes: 16)")
    try:
        return Accel.from_dict(settings)
    except HardwareConfigError as e:
        raise checks.CliError(f"accelerator config {path}: {e}") from None


def writable_dir(path: Path, flag: str) -> Path:
    """``path`` (a folder, created later) can be written: probed with a temporary folder in it or in
    its nearest existing parent, removed at once, so that the analysis is not lost at the end."""
    p = checks.output_dir(path, flag)
    where = next(a for a in (p, *p.parents) if a.exists())
    try:
        Path(tempfile.mkdtemp(prefix=".leanrnn-", dir=where)).rmdir()
    except OSError as e:
        raise checks.CliError(f"{flag} {p}: cannot write in {where} ({(e.strerror or str(e)).lower()}); "
                              "give a folder you can write to") from None
    return p


def _load(src: Path):
    """The runtime model of ``src``; a run that cannot be exported is named with the fix."""
    from ..export import ExportError, ModelFormatError
    from ..export.format import FIX
    from ..hw import load_model
    if not src.is_dir():
        return load_model(src)
    with checks.foreign_checkpoint(src):
        try:
            return load_model(src)
        except (ExportError, ModelFormatError) as e:
            msg = str(e).replace(f"; {FIX}", "")
            fix = ("its training diverged: retrain it, e.g. with a lower --lr"
                   if "non-finite" in msg or "float32's range" in msg else "retrain it with this leanrnn version")
            raise checks.CliError(f"cannot analyse run {src}: {msg}; {fix}") from None


def run(args, argv) -> int:
    from ..hw import analyse_model, print_report, write_report
    src = checks.model_or_run(args.model)
    accel = accel_from(args.config)
    out = writable_dir(Path(args.out or (src if src.is_dir() else src.parent)), "--out")
    res = analyse_model(_load(src), args.steps, accel)
    print_report(res)
    print("wrote " + ", ".join(str(p) for p in write_report(res, out)))
    return 0
