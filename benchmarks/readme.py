"""Rewrite README.md's (and docs/synthesis.md's) tables from the committed JSON, so no number in them is
typed by hand.

    python benchmarks/readme.py

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` and is what the script
that measured it prints with ``--markdown`` (the main job's: ``leanrnn demo --markdown
results/demo.json``). A table whose JSON is missing is left as it is, and the script says so.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "demo": ("results/demo.json", [sys.executable, "-m", "leanrnn.cli", "demo", "--markdown", "results/demo.json"]),
    "bench_train": ("benchmarks/bench_train.json", [sys.executable, "benchmarks/bench_train.py", "--markdown"]),
    "bench_runtime": ("benchmarks/bench_runtime.json", [sys.executable, "benchmarks/bench_runtime.py", "--markdown"]),
    "step_parts": ("benchmarks/step_parts.json", [sys.executable, "benchmarks/step_parts.py", "--markdown"]),
    "hw_papers": ("benchmarks/hw_papers.json", [sys.executable, "benchmarks/hw_papers.py", "--markdown"]),
    "fpga": ("benchmarks/fpga.json", [sys.executable, "benchmarks/fpga.py", "--markdown"]),
}
DOCS = {"README.md": ["demo", "bench_train", "bench_runtime", "step_parts", "hw_papers"], "docs/synthesis.md": ["fpga"]}


def main() -> int:
    for doc, names in DOCS.items():
        path = ROOT / doc
        text = path.read_text()
        for name in names:
            artifact, cmd = TABLES[name]
            begin, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
            if begin not in text or end not in text:
                print(f"{doc} has no {begin} ... {end}; skipped")
                continue
            if not (ROOT / artifact).exists():
                print(f"{artifact} is missing; run the benchmark first; {name} left as it is")
                continue
            table = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
            text = text[: text.index(begin) + len(begin)] + "\n" + table + "\n" + text[text.index(end):]
            print(f"{doc} {name}: {len(table.splitlines())} lines from {artifact}")
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
