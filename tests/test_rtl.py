import numpy as np
import pytest
from amaranth.sim import Simulator

from leanrnn.cli import main
from leanrnn.hw import Accel, Workload, simulate
from leanrnn.hw.model import matvec_cycles
from leanrnn.rtl import SparseMatVec, ZeroSkipScanner
from leanrnn.rtl.codes import pack_word
from leanrnn.rtl.cosim import random_layer
from leanrnn.rtl.fixed import FixedFormat, FixedLayer
from leanrnn.rtl.step import LstmStep
from leanrnn.rtl.synth import to_verilog


async def _write(ctx, we, addr, data, values):
    for j, v in enumerate(values):
        ctx.set(we, 1)
        ctx.set(addr, j)
        ctx.set(data, int(v))
        await ctx.tick()
    ctx.set(we, 0)


async def _start_and_count(ctx, dut) -> int:
    """Pulse start, then count cycles until done (the start cycle is cycle 1)."""
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    n = 1
    while not ctx.get(dut.done):
        await ctx.tick()
        n += 1
    return n


def run_matvec(codes, h, mode, skip=True, reload_codes=None, scan_chunk=None):
    dut = SparseMatVec(codes.tolist(), mode, 12, 24, skip=skip, scan_chunk=scan_chunk)
    res = {}

    async def tb(ctx):
        if reload_codes is not None:  # rewrite the weight memory through its port
            words = [pack_word(col, mode) for col in reload_codes]
            await _write(ctx, dut.w_we, dut.w_addr, dut.w_data, words)
        await _write(ctx, dut.h_we, dut.h_addr, dut.h_data, h)
        n = await _start_and_count(ctx, dut)
        res["cycles"] = n
        res["acc"] = np.array([ctx.get(dut.acc[0][i]) for i in range(codes.shape[1])])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return res


@pytest.mark.parametrize("mode", ["ternary", "binary"])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("scan_chunk", [None, 4])
def test_matvec_bit_exact_and_cycles_match_model(mode, density, skip, scan_chunk):
    rng = np.random.default_rng(int(density * 10) + (mode == "binary"))
    cols, rows = 10, 6
    codes = rng.choice([-1, 0, 1] if mode == "ternary" else [-1, 1], size=(cols, rows))
    h = rng.integers(-2048, 2048, cols)
    h[rng.random(cols) >= density] = 0
    res = run_matvec(codes, h, mode, skip, scan_chunk=scan_chunk)
    assert np.array_equal(res["acc"], (codes * h[:, None]).sum(0))  # integer reference
    K = int((h != 0).sum()) if skip else cols
    model = matvec_cycles(Accel(pes=1, lanes=rows, weight_bits=2 if mode == "ternary" else 1), rows, K)
    assert res["cycles"] == SparseMatVec.cycles(model) and (model == 0 or res["cycles"] == model + 2)


@pytest.mark.parametrize("mode", ["ternary", "binary", "int8"])
@pytest.mark.parametrize("density", [0.0, 0.5])
def test_folded_lanes_with_two_banks(mode, density):
    """Fewer lanes than rows: the rows come out group by group, each on its ``valid`` cycle, split
    into the input and state banks; cycles follow ``SparseMatVec.cycles`` and the hw model."""
    rng = np.random.default_rng(7)
    cols, rows, lanes, split = 7, 10, 4, 3
    vals = {"ternary": [-1, 0, 1], "binary": [-1, 1]}.get(mode)
    codes = rng.choice(vals, (cols, rows)) if vals else rng.integers(-128, 128, (cols, rows))
    h = rng.integers(-2048, 2048, cols)
    h[rng.random(cols) >= density] = 0
    dut = SparseMatVec(codes.tolist(), mode, 12, skip=True, split=split, lanes=lanes, writable=False)
    got = {}

    async def tb(ctx):
        await _write(ctx, dut.h_we, dut.h_addr, dut.h_data, h)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        n = 1
        while True:
            if ctx.get(dut.valid):
                got[ctx.get(dut.group)] = [[ctx.get(dut.acc[b][i]) for i in range(lanes)] for b in range(2)]
            if ctx.get(dut.done):
                break
            await ctx.tick()
            n += 1
        got["cycles"] = n

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    groups = dut.groups
    assert groups == 3 and sorted(k for k in got if k != "cycles") == [0, 1, 2]
    acc = np.array([got[g] for g in range(groups)])               # (group, bank, lane)
    acc = acc.transpose(1, 0, 2).reshape(2, -1)[:, :rows]
    assert np.array_equal(acc[0], (codes[:split] * h[:split, None]).sum(0))
    assert np.array_equal(acc[1], (codes[split:] * h[split:, None]).sum(0))
    K = int((h != 0).sum())
    assert got["cycles"] == SparseMatVec.cycles(K, groups)
    model = matvec_cycles(Accel(pes=1, lanes=lanes, weight_bits=8), rows, K)
    assert got["cycles"] == (model + 2 * groups if K else groups)


def test_weight_port_rewrites_columns():
    rng = np.random.default_rng(5)
    codes = rng.choice([-1, 0, 1], size=(6, 4))
    new = rng.choice([-1, 0, 1], size=(6, 4))
    h = rng.integers(-100, 100, 6)
    res = run_matvec(codes, h, "ternary", reload_codes=new)
    assert np.array_equal(res["acc"], (new * h[:, None]).sum(0))


def scan(width: int, mask: int, chunk: int | None = None) -> list[int]:
    """The indices the scanner yields, one per cycle from the cycle after ``load``."""
    dut = ZeroSkipScanner(width, chunk)
    seen = []

    async def tb(ctx):
        ctx.set(dut.mask_in, mask)
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
    return seen


def test_scanner_walks_set_bits_in_order():
    assert scan(9, 0b100100110) == [1, 2, 5, 8]


@pytest.mark.parametrize("width,chunk", [(9, 4), (37, 8), (64, 16), (5, 2)])
def test_chunked_scanner_yields_the_flat_scanners_indices(width, chunk):
    """Chunks (the last one partial where ``chunk`` does not divide the width, an empty chunk between
    live ones, the top bit alone, an empty mask): the same indices in the same cycles as the flat chain."""
    scanner = ZeroSkipScanner(width, chunk)
    assert scanner.chunk == chunk and "live" in to_verilog(scanner, "scan")
    assert "live" in to_verilog(SparseMatVec([[1, -1]] * width, "ternary", scan_chunk=chunk), "mv")
    rng = np.random.default_rng(width)
    masks = [0, 1 << (width - 1), (1 << width) - 1, 1 | 1 << (width - 1)]
    masks += [int("".join(rng.choice(["0", "1"], width, p=[0.8, 0.2])), 2) for _ in range(4)]
    for mask in masks:
        want = [i for i in range(width) if mask >> i & 1]
        assert scan(width, mask, chunk) == want == scan(width, mask), hex(mask)


def test_a_chunk_as_wide_as_the_mask_is_the_flat_scanner():
    for width in (8, 5):
        scanner = ZeroSkipScanner(width, 8)
        assert scanner.chunk is None and "live" not in to_verilog(scanner, "scan")
    assert "live" not in to_verilog(SparseMatVec([[1, -1]] * 5, "ternary", scan_chunk=8), "mv")


def test_scanner_rejects_a_chunk_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        ZeroSkipScanner(16, 6)


def test_verilog_and_cli(tmp_path):
    v = to_verilog(SparseMatVec([[1, -1], [0, 1]], "ternary"), "mv")
    assert "module mv" in v
    cfg = tmp_path / "a.yaml"
    cfg.write_text("pes: 1\nlanes: 8\nweight_bits: 2\nact_bits: 12\n")
    assert main(["rtl", "generate", "--config", str(cfg), "--columns", "8", "-o", str(tmp_path / "build")]) == 0
    assert "module leanrnn_matvec" in (tmp_path / "build" / "leanrnn_matvec.v").read_text()
    cfg.write_text("pes: 1\nlanes: 8\nweight_bits: 8\n")
    assert main(["rtl", "generate", "--config", str(cfg), "-o", str(tmp_path / "b2")]) == 2


# -- a whole time step -------------------------------------------------------------------------------



def run_steps(layer, xs, mode="ternary"):
    dut = LstmStep(layer, mode)
    H = layer.hidden
    out = []

    async def tb(ctx):
        for x in xs:
            await _write(ctx, dut.x_we, dut.x_addr, dut.x_data, x)
            n = await _start_and_count(ctx, dut)
            await ctx.tick()
            out.append((n, np.array([ctx.get(dut.h[k]) for k in range(H)]),
                        np.array([ctx.get(dut.c[k]) for k in range(H)])))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return out


def check_against_reference_and_model(layer, xs, mode="ternary"):
    out = run_steps(layer, xs, mode)
    H = layer.hidden
    h, c = np.zeros(H, np.int64), np.zeros(H, np.int64)
    fed = []
    for t, x in enumerate(xs):
        fed.append(h != 0)
        h, c, _, _ = layer.step(np.asarray(x), h, c, t)
        assert np.array_equal(out[t][1], h) and np.array_equal(out[t][2], c), f"step {t}"
    # The cycle-level model of leanrnn.hw, configured as this datapath, counts the same cycles.
    a = Accel(pes=1, lanes=4 * H, weight_bits=2 if mode == "ternary" else 1, act_units=1,
              pipeline_depth=LstmStep.OVERHEAD, skip_zero_inputs=True, skip_zero_states=True)
    wl = Workload(input_size=len(xs[0]), hidden_size=H, steps=len(xs))
    per_step = []
    for t in range(len(xs)):
        r = simulate(a, Workload(wl.input_size, H, steps=1), [fed[t][None]], (np.asarray(xs[t]) != 0)[None])
        per_step.append(r.cycles)
    assert [o[0] for o in out] == per_step
    assert sum(per_step) == simulate(a, wl, [np.array(fed)], np.array(xs) != 0).cycles


@pytest.mark.parametrize("mode", ["ternary", "binary"])
def test_lstm_step_random(mode):
    rng = np.random.default_rng(3)
    layer = random_layer(rng, 3, 4, 2, mode=mode)
    xs = [np.round(rng.uniform(-1, 1, 3) * 2 ** 12).astype(np.int64) for _ in range(3)]
    xs[1][1] = 0  # a zero input is skipped too
    check_against_reference_and_model(layer, xs, mode)


def test_lstm_step_on_a_trained_model(tmp_path):
    from _models import trained_lm
    from leanrnn.export import read_lrnn, write_lrnn
    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.runtime import Model
    lm = trained_lm(weights="ternary", batch_norm=True, state_sparsity=0.5)
    header, tensors = model_to_lrnn(lm, {"task": "char-lm"}, [str(i) for i in range(10)])
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    header, tensors = read_lrnn(tmp_path / "m.lrnn")
    fmt = FixedFormat()
    layer = FixedLayer.from_export(header, tensors, 0, fmt)
    rt = Model.load(tmp_path / "m.lrnn")
    tokens = [3, 1, 4, 1, 5]
    xs = [fmt.sat(fmt.q(rt._inputs(tok)[0]), fmt.act_bits) for tok in tokens]
    check_against_reference_and_model(layer, xs)


def test_fixed_point_tracks_the_float_runtime(tmp_path):
    import torch

    from leanrnn.export import write_lrnn
    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.rtl.fixed import compare_with_float
    from leanrnn.runtime import Model
    from leanrnn.tasks import LanguageModel
    torch.manual_seed(0)
    lm = LanguageModel(10, 16, embed_size=4, weights="ternary", batch_norm=True).eval()
    lm.lstm(torch.randn(5, 8, 4))
    header, tensors = model_to_lrnn(lm, {"task": "char-lm"}, [str(i) for i in range(10)])
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    r = compare_with_float(Model.load(tmp_path / "m.lrnn"), [1, 2, 3, 4, 5, 6, 7, 8])
    assert r["max_abs_h_error"] < 0.02 and r["top1_agreement"] >= 0.75


def test_rtl_cli_with_a_model(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--weights", "ternary", "--batch-norm", "--state-sparsity", "0.5", "--hidden", "4",
                 "--embed", "3", "--batch", "4", "--seq-len", "5", "--max-chars", "3000", "--epochs", "1",
                 "--steps-per-epoch", "2", "--no-progress", "--out", str(run)]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / "m.lrnn")]) == 0
    assert main(["rtl", "generate", "--model", str(tmp_path / "m.lrnn"), "-o", str(tmp_path / "b")]) == 0
    assert "module leanrnn_lstm_step" in (tmp_path / "b" / "leanrnn_lstm_step.v").read_text()
    assert main(["rtl", "fixed", str(tmp_path / "m.lrnn"), "--steps", "20"]) == 0
    assert "top-1 agreement" in capsys.readouterr().out


def _model_file(tmp_path, model, config, vocab=None):
    from leanrnn.export import write_lrnn
    from leanrnn.export.exporter import model_to_lrnn
    path = tmp_path / "m.lrnn"
    write_lrnn(path, *model_to_lrnn(model.eval(), config, vocab))
    return str(path)


@pytest.mark.parametrize("kind", ["two layers", "bidirectional"])
def test_rtl_refuses_a_model_it_cannot_build_in_one_line(tmp_path, capsys, kind):
    import torch

    from _models import trained_lm
    from leanrnn.tasks import SeqClassifier
    if kind == "two layers":
        path = _model_file(tmp_path, trained_lm(layers=2, steps=1, weights="ternary"), {"task": "char-lm"},
                      [str(i) for i in range(10)])
        argv, words = ["rtl", "fixed", path, "--steps", "5"], "the model has 2 layers: train it with --layers 1"
    else:
        torch.manual_seed(0)
        clf = SeqClassifier(1, 8, 10, bidirectional=True, weights="ternary", weight_norm=True)
        path = _model_file(tmp_path, clf, {"task": "classify", "data": "digits"})
        argv, words = ["rtl", "generate", "--model", path, "-o", str(tmp_path / "b")], "the model is bidirectional"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "b").exists()
