"""What ``leanrnn rtl`` builds: Verilog of the zero-skip matrix-vector block or of a model's whole
first-layer time step, and the fixed-point formats' accuracy against the float runtime."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..hw.config import Accel, HardwareConfigError
from .fixed import FixedFormat

#: The formats ``leanrnn rtl fixed`` compares: a narrow 12-bit datapath and the default 16-bit one.
COMPARED_FORMATS = (FixedFormat(act_bits=12, act_frac=9, c_bits=20, c_frac=13, lut_bits=9, lut_frac=5),
                    FixedFormat())

#: The block ``rtl generate`` builds without an accelerator config.
DEFAULT_ACCEL = Accel(pes=1, lanes=16)


def _check_model(header: dict, what: str) -> None:
    """The RTL datapath adds and subtracts only: binary or ternary weights and token inputs; it builds
    one-directional layers without projection, and ``rtl fixed`` compares one whole layer stack."""
    L = header["layers"]
    mode = L[0]["weights"]
    if mode not in ("binary", "ternary"):
        raise HardwareConfigError(f"{what} needs binary or ternary weights, the model has {mode} weights; train "
                                  "with --weights ternary (or binary) and export again")
    if "reverse" in L[0] or "proj_size" in L[0]:
        kind = "bidirectional" if "reverse" in L[0] else "projected (proj_size)"
        raise HardwareConfigError(f"{what} builds one-directional LSTM layers without projection; the model is "
                                  f"{kind}: train one without --bidirectional or a projection and export it")
    if what == "rtl fixed" and header["input"]["kind"] == "dense":
        raise HardwareConfigError("rtl fixed compares a char- or word-LM on its text; the model is a "
                                  f"{header['task']} model with dense inputs")
    if what == "rtl fixed" and len(L) != 1:
        raise HardwareConfigError(f"rtl fixed compares a one-layer model (the datapath's output is the output "
                                  f"layer's input); the model has {len(L)} layers: train it with --layers 1, or "
                                  "use 'leanrnn rtl generate --model' for its first layer")


def write_matvec(accel: Accel, columns: int, out: str | Path) -> dict:
    """``leanrnn_matvec.v``: ``accel.macs`` rows by ``columns`` state entries, zero weights."""
    from ..hw.model import acc_bits
    from .blocks import SparseMatVec
    from .synth import to_verilog
    if accel.weight_bits not in (1, 2):
        raise HardwareConfigError(f"the RTL datapath is multiplier-free: weight_bits must be 1 or 2, got "
                                  f"{accel.weight_bits}; set weight_bits: 2 (ternary) or 1 (binary) in the config")
    mode = "ternary" if accel.weight_bits == 2 else "binary"
    zero = [[0 if mode == "ternary" else 1] * accel.macs for _ in range(columns)]
    acc = acc_bits(accel, columns)
    dut = SparseMatVec(zero, mode, accel.act_bits, acc, skip=accel.skip_zero_states)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "leanrnn_matvec.v"
    path.write_text(to_verilog(dut, "leanrnn_matvec"))
    return {"path": path, "mode": mode, "columns": columns, "rows": accel.macs, "act_bits": accel.act_bits,
            "acc_bits": acc, "skip": accel.skip_zero_states}


def write_model_step(model_path: str | Path, out: str | Path) -> dict:
    """``leanrnn_lstm_step.v``: a model's first-layer time step, weights and folded batch norm in ROMs."""
    from ..export import read_lrnn
    from .fixed import FixedLayer
    from .step import LstmStep
    from .synth import to_verilog
    header, tensors = read_lrnn(model_path)
    _check_model(header, "rtl generate --model")
    layer = FixedLayer.from_export(header, tensors, 0)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "leanrnn_lstm_step.v"
    path.write_text(to_verilog(LstmStep(layer, header["layers"][0]["weights"]), "leanrnn_lstm_step"))
    return {"path": path, "input": layer.codes_ih.shape[0], "hidden": layer.hidden, "bn_steps": layer.s_ih.shape[0]}


def fixed_point_accuracy(model_path: str | Path, steps: int, log: Callable[[str], None] = print) -> list:
    """``[(format, result)]`` of ``compare_with_float`` over the model's first ``steps`` test tokens
    (random tokens, with a note, when its data set is not here)."""
    from ..hw.trace import trace_inputs
    from ..runtime import Model
    from .fixed import compare_with_float
    m = Model.load(model_path)
    _check_model(m.header, "rtl fixed")
    ids = trace_inputs(m, steps, log)
    return [(fmt, compare_with_float(m, ids, fmt=fmt)) for fmt in COMPARED_FORMATS]
