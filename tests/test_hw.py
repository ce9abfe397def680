import dataclasses

import numpy as np
import pytest

from leanrnn.cli import main
from leanrnn.hw import Accel, HardwareConfigError, Workload, analytic, simulate
from leanrnn.hw.presets import (DATE_STATE_DENSITY, PTB_CHAR, date_accel, iclr_binary, iclr_fp12,
                                iclr_ternary)


def test_hand_computed_cycles():
    a = Accel(pes=2, lanes=2, weight_bits=2, act_units=4, pipeline_depth=1)
    wl = Workload(input_size=2, hidden_size=2, steps=3)
    masks = [np.array([[0, 0], [1, 0], [1, 1]], bool)]
    r = simulate(a, wl, masks)
    # G = 8 rows over 4 accumulators: 2 cycles per column; columns 2 + nnz(h) = 2, 3, 4;
    # gate phase: 2 hidden entries on 4 gate units = 1 cycle, plus 1 pipeline stage.
    assert r.cycles == (2 * 2 + 2) + (2 * 3 + 2) + (2 * 4 + 2)
    assert r.mv_cycles == 18 and r.gate_cycles == 6


@pytest.mark.parametrize("kw", [dict(), dict(skip_zero_states=False), dict(dataflow="row", pes=4, lanes=8),
                                dict(weight_bits=12, weight_bw_bits=256), dict(scanner_overlap=False)])
def test_modes_agree_on_dense_input(kw):
    a = Accel(**kw)
    wl = Workload(input_size=40, hidden_size=64, layers=2, steps=7)
    dense = [np.ones((7, 64), bool)] * 2
    s, an = simulate(a, wl, dense), analytic(a, wl, 1.0, 1.0)
    assert s.cycles == pytest.approx(an.cycles)
    for k in an.energy_pj:
        assert s.energy_pj[k] == pytest.approx(an.energy_pj[k])


def test_trace_matches_analytic_for_random_masks():
    a = Accel()
    wl = Workload(input_size=32, hidden_size=256, steps=400)
    masks = [np.random.default_rng(0).random((400, 256)) < 0.1]
    s, an = simulate(a, wl, masks), analytic(a, wl, float(masks[0].mean()))
    assert s.cycles == pytest.approx(an.cycles, rel=0.02)


def test_row_dataflow_pays_for_imbalance():
    a = Accel(dataflow="row", pes=4, lanes=16)
    wl = Workload(input_size=0 + 4, hidden_size=60, steps=1)
    spread = np.zeros((1, 60), bool)
    spread[0, ::10] = True             # 6 non-zeros spread over the slices
    lumped = np.zeros((1, 60), bool)
    lumped[0, :6] = True               # the same 6 in the first slice
    assert simulate(a, wl, [lumped]).mv_cycles > simulate(a, wl, [spread]).mv_cycles


def test_iclr_ratios():
    fp, b, t = (analytic(f(), PTB_CHAR) for f in (iclr_fp12, iclr_binary, iclr_ternary))
    assert fp.weight_bits / b.weight_bits == pytest.approx(12, rel=0.15)
    assert fp.cycles / b.cycles == pytest.approx(10, rel=0.15)
    assert fp.weight_bits / t.weight_bits == 6 and fp.cycles / t.cycles > 4


def test_date_ratios():
    dense = analytic(date_accel(False), PTB_CHAR, 1.0)
    sparse = analytic(date_accel(True), PTB_CHAR, DATE_STATE_DENSITY)
    assert dense.cycles / sparse.cycles == pytest.approx(5.2, rel=0.15)
    assert dense.energy_per_step_pj / sparse.energy_per_step_pj == pytest.approx(5.2, rel=0.15)
    # monotone: denser states never cost less
    costs = [analytic(date_accel(True), PTB_CHAR, d).cycles for d in (0.05, 0.2, 0.5, 1.0)]
    assert costs == sorted(costs) and costs[-1] == dense.cycles


def test_impossible_configurations():
    wl = Workload(input_size=64, hidden_size=1000)
    with pytest.raises(HardwareConfigError, match="pes=0"):
        analytic(Accel(pes=0), wl)
    small = Accel(weight_bits=16, weight_sram_bytes=2**20)
    with pytest.raises(HardwareConfigError, match="no off-chip path"):
        analytic(small, wl)
    r = analytic(dataclasses.replace(small, dram_bw_bits=64), wl)
    assert not r.weights_on_chip and "weight_dram" in r.energy_pj
    with pytest.raises(HardwareConfigError, match="weight_bits=3"):
        analytic(Accel(weight_bits=3), wl)
    with pytest.raises(HardwareConfigError, match="state mask"):
        simulate(Accel(), Workload(4, 8, steps=2), [np.ones((2, 7), bool)])


def test_hw_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--weights", "ternary", "--batch-norm", "--state-sparsity", "0.8", "--hidden", "16",
                 "--embed", "8", "--batch", "4", "--seq-len", "10", "--max-chars", "4000", "--epochs", "1",
                 "--steps-per-epoch", "3", "--no-progress", "--out", str(run)]) == 0
    assert main(["hw", str(run), "--steps", "30"]) == 0
    out = capsys.readouterr().out
    assert "sparse states" in out and "dense states" in out
    for name in ("hw_sparsity.png", "hw_energy.png", "hw_memory.png", "hw_report.json"):
        assert (run / name).stat().st_size > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("pes: 0\n")
    assert main(["hw", str(run), "--config", str(bad)]) == 1
    assert "pes=0" in capsys.readouterr().err
