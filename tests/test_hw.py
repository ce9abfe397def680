import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leanrnn.cli import main
from leanrnn.hw import (
    Accel,
    HardwareConfigError,
    Tech,
    Workload,
    amdahl_bound,
    analytic,
    simulate,
)
from leanrnn.hw.presets import PRESETS, SOURCES, Assumed, Sourced

DOCS = Path(__file__).resolve().parents[1] / "docs" / "accelerator.md"
PROPS = settings(max_examples=60, deadline=None)


@st.composite
def configs(draw, skip_states=None):
    """Any valid accelerator and technology with a small workload it can hold on chip."""
    tech = Tech(lut_pj=draw(st.floats(0, 5)), static_mw=draw(st.floats(0, 2000)),
                node_scale=draw(st.floats(0.2, 4)), sram_pj_per_bit_8kb=draw(st.floats(0.01, 2)))
    a = Accel(pes=draw(st.integers(1, 32)), lanes=draw(st.integers(1, 32)),
              dataflow=draw(st.sampled_from(["column", "row"])),
              weight_bits=draw(st.sampled_from([1, 2, 4, 8, 12, 16, 32])), act_bits=draw(st.integers(4, 16)),
              skip_zero_states=draw(st.booleans()) if skip_states is None else skip_states,
              skip_zero_inputs=draw(st.booleans()), scanner_width=draw(st.integers(1, 128)),
              scanner_overlap=draw(st.booleans()), act_units=draw(st.integers(1, 16)),
              pipeline_depth=draw(st.integers(0, 16)), weight_sram_bytes=2**30,
              sram_bank_bytes=draw(st.sampled_from([8192, 65536, 2**20])),
              weight_bw_bits=draw(st.one_of(st.none(), st.integers(8, 8192))), tech=tech)
    wl = Workload(input_size=draw(st.integers(1, 80)), hidden_size=draw(st.integers(1, 200)),
                  layers=draw(st.integers(1, 3)), steps=draw(st.integers(1, 6)))
    return a, wl


def test_hand_computed_cycles():
    a = Accel(pes=2, lanes=2, weight_bits=2, act_units=4, pipeline_depth=1)
    wl = Workload(input_size=2, hidden_size=2, steps=3)
    masks = [np.array([[0, 0], [1, 0], [1, 1]], bool)]
    r = simulate(a, wl, masks)
    # G = 8 rows over 4 accumulators: 2 cycles per column; columns 2 + nnz(h) = 2, 3, 4;
    # gate phase: 2 hidden entries on 4 gate units = 1 cycle, plus 1 pipeline stage.
    assert r.cycles == (2 * 2 + 2) + (2 * 3 + 2) + (2 * 4 + 2)
    assert r.mv_cycles == 18 and r.gate_cycles == 6


@PROPS
@given(configs(), st.data())
def test_analytic_equals_trace_on_dense_input(cw, data):
    a, wl = cw
    dense = [np.ones((wl.steps, wl.hidden_size), bool)] * wl.layers
    s, an = simulate(a, wl, dense), analytic(a, wl, 1.0, 1.0)
    assert s.cycles == pytest.approx(an.cycles)
    assert s.energy_pj.keys() == an.energy_pj.keys()
    for k in an.energy_pj:
        assert s.energy_pj[k] == pytest.approx(an.energy_pj[k])


@PROPS
@given(configs(skip_states=True), st.floats(0, 1), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_cycles_fall_as_zero_states_rise(cw, d1, d2, seed):
    a, wl = cw
    lo, hi = sorted((d1, d2))
    assert analytic(a, wl, lo).cycles <= analytic(a, wl, hi).cycles * (1 + 1e-12)
    # trace-driven: zeroing more entries of the same masks never costs cycles
    rng = np.random.default_rng(seed)
    u = [rng.random((wl.steps, wl.hidden_size)) for _ in range(wl.layers)]
    sparse, denser = ([m < d for m in u] for d in (lo, hi))
    assert simulate(a, wl, sparse).cycles <= simulate(a, wl, denser).cycles + 1e-9


@PROPS
@given(configs(skip_states=True), st.floats(0, 1), st.floats(0, 1))
def test_speedup_never_exceeds_amdahl_bound(cw, d_state, d_input):
    a, wl = cw
    dense = analytic(dataclasses.replace(a, skip_zero_states=False, skip_zero_inputs=False), wl)
    bound = amdahl_bound(a, wl, d_state, d_input)
    assert dense.cycles / analytic(a, wl, d_state, d_input).cycles <= bound * (1 + 1e-9)
    assert bound >= 1


def test_column_dataflow_meets_the_amdahl_bound():
    a = Accel(pes=4, lanes=8, act_units=2, scanner_overlap=True)
    wl = Workload(input_size=30, hidden_size=100)
    dense = analytic(dataclasses.replace(a, skip_zero_states=False), wl)
    # mv cycles per column: ceil(400 / 32) = 13; gate phase 50 + 8
    assert dense.cycles / analytic(a, wl, 0.1).cycles == pytest.approx(amdahl_bound(a, wl, 0.1))
    assert amdahl_bound(a, wl, 0.1) == pytest.approx((13 * 130 + 58) / (13 * 40 + 58))


@PROPS
@given(configs(skip_states=True), st.floats(0, 1), st.floats(0, 5000))
def test_energy_gain_lies_between_dynamic_and_always_on_limits(cw, d, static_mw):
    a, wl = cw

    def with_p(acc, mw):
        return dataclasses.replace(acc, tech=dataclasses.replace(acc.tech, static_mw=mw))

    dense_a = dataclasses.replace(a, skip_zero_states=False)
    runs = {mw: (analytic(with_p(dense_a, mw), wl), analytic(with_p(a, mw), wl, d)) for mw in (0.0, static_mw)}
    dn, sp = runs[static_mw]
    gain = dn.energy_per_step_pj / sp.energy_per_step_pj
    dynamic_only = runs[0.0][0].energy_per_step_pj / runs[0.0][1].energy_per_step_pj
    always_on = dn.cycles / sp.cycles
    assert min(dynamic_only, always_on) * (1 - 1e-9) <= gain <= max(dynamic_only, always_on) * (1 + 1e-9)


@PROPS
@given(configs(), st.floats(0, 1))
def test_cycles_do_not_depend_on_the_technology(cw, d):
    a, wl = cw
    other = dataclasses.replace(a, tech=Tech(static_mw=0.0, lut_pj=9.0, node_scale=3.0))
    assert analytic(a, wl, d).cycles == analytic(other, wl, d).cycles


@PROPS
@given(configs())
def test_weight_memory_scales_with_bit_width(cw):
    a, wl = cw
    one = analytic(dataclasses.replace(a, weight_bits=1), wl).weight_bits
    assert one == wl.weight_count() > 0
    assert analytic(a, wl).weight_bits == a.weight_bits * one


def test_trace_matches_analytic_for_random_masks():
    a = Accel()
    wl = Workload(input_size=32, hidden_size=256, steps=400)
    masks = [np.random.default_rng(0).random((400, 256)) < 0.1]
    s, an = simulate(a, wl, masks), analytic(a, wl, float(masks[0].mean()))
    assert s.cycles == pytest.approx(an.cycles, rel=0.02)


def test_row_dataflow_pays_for_imbalance():
    a = Accel(dataflow="row", pes=4, lanes=16)
    wl = Workload(input_size=4, hidden_size=60, steps=1)
    spread = np.zeros((1, 60), bool)
    spread[0, ::10] = True             # 6 non-zeros spread over the slices
    lumped = np.zeros((1, 60), bool)
    lumped[0, :6] = True               # the same 6 in the first slice
    assert simulate(a, wl, [lumped]).mv_cycles > simulate(a, wl, [spread]).mv_cycles


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_every_preset_value_is_sourced_or_a_swept_assumption(key):
    p = PRESETS[key]
    fields = ({f.name for f in dataclasses.fields(Accel)} - {"tech"}
              | {f.name for f in dataclasses.fields(Tech)} - {"name"}
              | {f.name for f in dataclasses.fields(Workload)})
    assert fields <= set(p.params) | set(p.derived), "fields neither sourced, assumed nor derived"
    docs = DOCS.read_text()
    for name, q in p.params.items():
        assert isinstance(q, (Sourced, Assumed))
        if isinstance(q, Sourced):
            assert q.source in SOURCES and q.tag in "VRDM"
        else:
            assert q.value in q.sweep, f"{name}: the default lies outside its sweep"
        assert f"`{name}`" in docs, f"{name} is not documented in docs/accelerator.md"
    for k in SOURCES:
        assert f"`{k}`" in docs, f"source {k} is not described in docs/accelerator.md"


@pytest.mark.parametrize("key", sorted(PRESETS))
@PROPS
@given(data=st.data())
def test_presets_build_at_any_sweep_point(key, data):
    p = PRESETS[key]
    values = {k: data.draw(st.sampled_from(a.sweep), label=k) for k, a in p.free().items()}
    wl, accels = p.configs(values)
    for a in accels.values():
        assert analytic(a, wl, 0.5).cycles > 0
    with pytest.raises(KeyError, match="no parameter"):
        p.configs({"not_a_parameter": 1})


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
    with pytest.raises(HardwareConfigError, match="unknown tech setting.*reg_pj"):
        Accel.from_dict({"tech": {"reg_pj": 1.0}})


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
    assert main(["hw", str(run), "--config", str(bad)]) != 0
    assert "pes=0" in capsys.readouterr().err


def test_hw_refuses_bidirectional_models_in_one_line(tmp_path, capsys):
    import torch

    from leanrnn.export import model_to_lrnn, write_lrnn
    from leanrnn.tasks import SeqClassifier
    torch.manual_seed(0)
    clf = SeqClassifier(1, 8, 10, bidirectional=True, weights="ternary", weight_norm=True).eval()
    header, tensors = model_to_lrnn(clf, {"task": "classify", "data": "digits"}, None)
    write_lrnn(tmp_path / "bi.lrnn", header, tensors)
    assert main(["hw", str(tmp_path / "bi.lrnn"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "bidirectional" in err and "\n" not in err and not (tmp_path / "r").exists()


# -- bad input: accelerator configs, traced data, the command line -----------------------------------

BAD_ACCELS = [  # YAML text -> words of the one-line HardwareConfigError
    ("tech: abc", "tech='abc' must be a mapping"),
    ("tech: [1]", r"tech=\[1\] must be a mapping"),
    ("tech: {add32_pj: x}", "add32_pj='x' must be a number"),
    ("tech: {node_scale: 0}", "tech.node_scale=0 must be a number > 0"),
    ("1: 2", "setting name 1 is not a name"),
    ("act_bits: 0", "act_bits=0 must be an integer from 2 to 32"),
    ("pes: 2.5", "pes=2.5 must be an integer"),
    ("clock_hz: .nan", "clock_hz=nan must be a number of Hz"),
    ("pipeline_depth: -5", "pipeline_depth=-5 must be an integer from 0"),
    ("dram_bw_bits: -1", "dram_bw_bits=-1 must be a number >= 0"),
    ("clock_hz: 1e-300", r"YAML reads '1e-300' as text, write clock_hz: 1\.0e-300"),
    ("- 1", "must be a mapping"),
]


@pytest.mark.parametrize("text, words", BAD_ACCELS, ids=[t for t, _ in BAD_ACCELS])
def test_bad_accelerator_configs_name_the_setting(text, words):
    import yaml
    with pytest.raises(HardwareConfigError, match=words) as e:
        Accel.from_dict(yaml.safe_load(text))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, words", [("act_bits: 0", "act_bits=0"), ("clock_hz: .nan", "clock_hz=nan")])
def test_bad_accelerator_config_on_the_command_line(tmp_path, capsys, text, words):
    cfg = tmp_path / "a.yaml"
    cfg.write_text(text + "\n")
    assert main(["rtl", "generate", "--columns", "4", "--config", str(cfg), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"leanrnn: error: accelerator config {cfg}: {words}") and err.count("\n") == 1


def _lm(config: dict, vocab: list, embed: int = 2):
    import torch

    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.runtime import Model
    from leanrnn.tasks import LanguageModel
    torch.manual_seed(0)
    lm = LanguageModel(len(vocab), 4, embed_size=embed, weights="ternary").eval()
    return Model(*model_to_lrnn(lm, config, vocab))


def test_trace_falls_back_when_the_data_changed_since_training(tmp_path):
    from leanrnn.data.text import load_text
    from leanrnn.hw import analyse_model
    from leanrnn.hw.trace import trace_inputs
    text = tmp_path / "t.txt"
    text.write_text("abba" * 300)
    model = _lm({"task": "char-lm", "data": str(text)}, load_text(str(text)).vocab)
    assert len(trace_inputs(model, 20, log=pytest.fail)) == 20  # the model's own data: no note
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 30)
    notes = []
    ids = trace_inputs(model, 20, log=notes.append)
    assert len(notes) == 1 and "vocabulary (29 tokens) is not the model's (3)" in notes[0]
    assert len(ids) == 20 and ids.min() >= 0 and ids.max() < 3
    assert analyse_model(model, 20, log=notes.append)["workload"]["steps"] == 20


def test_trace_falls_back_when_the_data_has_another_width():
    import torch

    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.hw.trace import trace_inputs
    from leanrnn.runtime import Model
    from leanrnn.tasks import SeqClassifier
    torch.manual_seed(0)
    clf = SeqClassifier(2, 8, 10, weights="ternary").eval()  # the digits are 1 pixel wide per step
    model = Model(*model_to_lrnn(clf, {"task": "classify", "data": "digits"}, None))
    notes = []
    x = trace_inputs(model, 30, log=notes.append)
    assert x.shape == (30, 2) and len(notes) == 1 and "width 1, the model's 2" in notes[0]


@pytest.mark.parametrize("where", ["/", "/dev/zero", "big", "data_dir"])
def test_trace_reads_no_path_that_a_header_makes_unsafe(tmp_path, monkeypatch, where):
    """A header is untrusted: it must not make ``hw`` walk the filesystem or read a device."""
    import leanrnn.data
    from leanrnn.hw import trace
    calls = []
    monkeypatch.setattr(leanrnn.data, "load_for_task", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(trace, "MAX_TREE", 3)
    big, small = tmp_path / "big", tmp_path / "small"
    for d, n in ((big, 5), (small, 2)):
        d.mkdir()
        for i in range(n):
            (d / f"{i}.txt").write_text("ab")
    config = {"task": "char-lm", "data": str(big if where == "big" else where)}
    if where == "data_dir":
        config = {"task": "char-lm", "data": "pystdlib", "data_dir": "/"}
    notes = []
    trace.trace_inputs(_lm(config, ["<unk>", "a", "b"]), 10, log=notes.append)
    assert calls == [] and "is not a text file or a data folder of at most 3 entries" in notes[0]
    trace.trace_inputs(_lm({"task": "char-lm", "data": str(small)}, ["<unk>", "a", "b"]), 10, log=notes.append)
    assert len(calls) == 1  # a small folder is read


def test_hw_steps_have_an_upper_bound(capsys):
    with pytest.raises(SystemExit) as e:
        main(["hw", "m.lrnn", "--steps", "1000000000"])
    assert e.value.code == 2 and "at most 100000" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_hw_checks_the_output_folder_before_the_analysis(tmp_path, capsys):
    from leanrnn.export import write_lrnn
    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.tasks import LanguageModel
    write_lrnn(tmp_path / "m.lrnn", *model_to_lrnn(LanguageModel(3, 4, embed_size=2).eval(), {"task": "char-lm"},
                                                   ["<unk>", "a", "b"]))
    assert main(["hw", str(tmp_path / "m.lrnn"), "--steps", "5", "--out", "/proc/leanrnn-hw"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--out /proc/leanrnn-hw: cannot write in /proc" in err


@pytest.mark.parametrize("error, words", [
    ("ExportError", "this model does not fit the .lrnn format: tensor 'embed.weight' holds non-finite values"),
    ("ModelFormatError", "tensor 'l0.w_ih' holds weights so large that the product W_ih x reaches 4.7e+39, beyond "
                         "float32's range (3.4e+38): the model cannot run")])
def test_hw_names_a_run_whose_model_does_not_export(tmp_path, monkeypatch, capsys, error, words):
    import leanrnn.export
    from leanrnn.export import exporter
    from leanrnn.export.format import FIX

    def diverged(*a, **k):
        raise getattr(leanrnn.export, error)(f"{words}; {FIX}")

    monkeypatch.setattr(exporter, "export_run", diverged)
    run = tmp_path / "nan_run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"\x80")
    assert main(["hw", str(run), "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err == f"leanrnn: error: cannot analyse run {run}: {words}; its training diverged: retrain it, e.g. " \
                  "with a lower --lr\n"
