import numpy as np
import pytest
from amaranth.sim import Simulator

from leanrnn.cli import main
from leanrnn.hw import Accel
from leanrnn.hw.model import matvec_cycles
from leanrnn.rtl import SparseMatVec, ZeroSkipScanner
from leanrnn.rtl.synth import to_verilog


def run_matvec(codes, h, mode, skip=True, reload_codes=None):
    dut = SparseMatVec(codes.tolist(), mode, 12, 24, skip=skip)
    res = {}

    async def tb(ctx):
        if reload_codes is not None:  # rewrite the weight memory through its port
            cb = 2 if mode == "ternary" else 1
            enc = {"ternary": {0: 0, 1: 1, -1: 2}, "binary": {1: 1, -1: 0}}[mode]
            for j, col in enumerate(reload_codes):
                ctx.set(dut.w_we, 1)
                ctx.set(dut.w_addr, j)
                ctx.set(dut.w_data, sum(enc[int(c)] << (cb * i) for i, c in enumerate(col)))
                await ctx.tick()
            ctx.set(dut.w_we, 0)
        for j, v in enumerate(h):
            ctx.set(dut.h_we, 1)
            ctx.set(dut.h_addr, j)
            ctx.set(dut.h_data, int(v))
            await ctx.tick()
        ctx.set(dut.h_we, 0)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        n = 1
        while not ctx.get(dut.done):
            await ctx.tick()
            n += 1
        res["cycles"] = n
        res["acc"] = np.array([ctx.get(getattr(dut, f"acc{i}")) for i in range(codes.shape[1])])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return res


@pytest.mark.parametrize("mode", ["ternary", "binary"])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("skip", [True, False])
def test_matvec_bit_exact_and_cycles_match_model(mode, density, skip):
    rng = np.random.default_rng(int(density * 10) + (mode == "binary"))
    cols, rows = 10, 6
    codes = rng.choice([-1, 0, 1] if mode == "ternary" else [-1, 1], size=(cols, rows))
    h = rng.integers(-2048, 2048, cols)
    h[rng.random(cols) >= density] = 0
    res = run_matvec(codes, h, mode, skip)
    assert np.array_equal(res["acc"], (codes * h[:, None]).sum(0))  # integer reference
    K = int((h != 0).sum()) if skip else cols
    model = matvec_cycles(Accel(pes=1, lanes=rows, weight_bits=2 if mode == "ternary" else 1), rows, K)
    assert res["cycles"] == SparseMatVec.cycles(model) and (model == 0 or res["cycles"] == model + 2)


def test_weight_port_rewrites_columns():
    rng = np.random.default_rng(5)
    codes = rng.choice([-1, 0, 1], size=(6, 4))
    new = rng.choice([-1, 0, 1], size=(6, 4))
    h = rng.integers(-100, 100, 6)
    res = run_matvec(codes, h, "ternary", reload_codes=new)
    assert np.array_equal(res["acc"], (new * h[:, None]).sum(0))


def test_scanner_walks_set_bits_in_order():
    dut = ZeroSkipScanner(9)
    seen = []

    async def tb(ctx):
        ctx.set(dut.mask_in, 0b100100110)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        ctx.set(dut.next, 1)
        while ctx.get(dut.valid):
            seen.append(ctx.get(dut.index))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [1, 2, 5, 8]


def test_verilog_and_cli(tmp_path):
    v = to_verilog(SparseMatVec([[1, -1], [0, 1]], "ternary"), "mv")
    assert "module mv" in v
    cfg = tmp_path / "a.yaml"
    cfg.write_text("pes: 1\nlanes: 8\nweight_bits: 2\nact_bits: 12\n")
    assert main(["rtl", "generate", "--config", str(cfg), "--columns", "8", "-o", str(tmp_path / "build")]) == 0
    assert "module leanrnn_matvec" in (tmp_path / "build" / "leanrnn_matvec.v").read_text()
    cfg.write_text("pes: 1\nlanes: 8\nweight_bits: 8\n")
    assert main(["rtl", "generate", "--config", str(cfg), "-o", str(tmp_path / "b2")]) == 1
