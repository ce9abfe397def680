"""Run the generated Verilog of ``LstmStep`` in Icarus Verilog: a check of the RTL by a simulator that
shares no code with Amaranth's (its Verilog backend is what is under test).

The testbench writes each input vector through ``x_we/x_addr/x_data``, pulses ``start``, counts the
cycles to ``done`` exactly as the Amaranth testbenches do, then prints ``h`` and ``c``.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from .fixed import FixedFormat, FixedLayer
from .step import LstmStep
from .synth import to_verilog


def icarus_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def random_layer(rng: np.random.Generator, X: int, H: int, T: int, mode: str = "ternary",
                 fmt: FixedFormat | None = None) -> FixedLayer:
    """A layer with random codes, per-step batch-norm scales, biases and a pruning threshold of 0.2:
    test vectors that exercise every part of the step."""
    fmt = fmt or FixedFormat()

    def q(v, frac):
        return np.round(np.asarray(v) * 2 ** frac).astype(np.int64)

    vals = [-1, 0, 1] if mode == "ternary" else [-1, 1]
    u = rng.uniform
    return FixedLayer(fmt, rng.choice(vals, (X, 4 * H)).astype(np.int8), rng.choice(vals, (H, 4 * H)).astype(np.int8),
                      q(u(0.1, 1, (T, 4 * H)), fmt.scale_frac), q(u(0.1, 1, (T, 4 * H)), fmt.scale_frac),
                      q(u(-1, 1, (T, 4 * H)), fmt.act_frac), True, q(u(0.5, 3, (T, H)), fmt.scale_frac),
                      q(u(-1, 1, (T, H)), fmt.act_frac), int(0.2 * 2 ** fmt.act_frac),
                      fmt.table(lambda v: 1 / (1 + np.exp(-v))), fmt.table(np.tanh))


def _testbench(top: str, X: int, H: int, fmt, xs) -> str:
    aw = max((max(X, 2) - 1).bit_length(), 1)
    ports = [".clk(clk)", ".rst(rst)", ".start(start)", ".done(done)", ".x_we(x_we)", ".x_addr(x_addr)",
             ".x_data(x_data)"] + [f".h__{k}(h[{k}])" for k in range(H)] + [f".c__{k}(c[{k}])" for k in range(H)]
    body = []
    for t, x in enumerate(xs):
        for j, v in enumerate(x):
            body.append(f"    x_we = 1; x_addr = {j}; x_data = {int(v)}; @(negedge clk);")
        body.append("    x_we = 0; start = 1; @(negedge clk); start = 0; n = 1;")
        body.append("    while (!done) begin @(negedge clk); n = n + 1; end")
        body.append("    @(negedge clk);")
        body.append(f'    $write("STEP {t} %0d", n);')
        body.append(f'    for (k = 0; k < {H}; k = k + 1) $write(" %0d", h[k]);')
        body.append(f'    for (k = 0; k < {H}; k = k + 1) $write(" %0d", c[k]);')
        body.append('    $write("\\n");')
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, start = 0, x_we = 0;
  reg [{aw - 1}:0] x_addr = 0;
  reg signed [{fmt.act_bits - 1}:0] x_data = 0;
  wire done;
  wire signed [{fmt.act_bits - 1}:0] h [0:{H - 1}];
  wire signed [{fmt.c_bits - 1}:0] c [0:{H - 1}];
  integer n, k;
  {top} dut({", ".join(ports)});
  always #5 clk = ~clk;
  initial begin
    @(negedge clk); rst = 0;
{chr(10).join(body)}
    $finish;
  end
endmodule
"""


def run_icarus(layer: FixedLayer, xs, mode: str = "ternary", workdir: str | Path = "build/cosim",
               timeout: float = 300, scan_chunk: int | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Simulate ``LstmStep(layer, mode, scan_chunk)`` from its Verilog over the integer input vectors ``xs``
    (one per step, from a zero state): ``(cycles, h, c)`` per step."""
    if not icarus_available():
        raise FileNotFoundError("Icarus Verilog is not installed (Debian/Ubuntu: apt-get install iverilog)")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    top = "leanrnn_lstm_step"
    X, H = layer.codes_ih.shape[0], layer.hidden
    (work / f"{top}.v").write_text(to_verilog(LstmStep(layer, mode, scan_chunk), top))
    (work / "tb.v").write_text(_testbench(top, X, H, layer.fmt, xs))
    for cmd in (["iverilog", "-g2005", "-o", "sim", "tb.v", f"{top}.v"], ["vvp", "-n", "sim"]):
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed in {work}:\n{(r.stderr or r.stdout)[-1500:]}")
    out = []
    for line in r.stdout.splitlines():
        if line.startswith("STEP "):
            v = [int(s) for s in line.split()[2:]]
            out.append((v[0], np.array(v[1:1 + H]), np.array(v[1 + H:1 + 2 * H])))
    if len(out) != len(xs):
        raise RuntimeError(f"the testbench printed {len(out)} of {len(xs)} steps:\n{r.stdout[-1500:]}")
    return out
