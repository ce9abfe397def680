"""``leanrnn rtl generate | fixed | report | fpga``: Verilog of the accelerator datapath (Amaranth),
its fixed-point accuracy, generic-gate synthesis, and place and route on a Lattice ECP5."""
from __future__ import annotations

from . import checks
from .checks import positive
from .hw import MAX_HW_STEPS, accel_from


def add_parsers(sub) -> dict:
    rtl = sub.add_parser("rtl", help="synthesizable Verilog of the accelerator datapath (Amaranth)")
    rsub = rtl.add_subparsers(dest="rtl_command", metavar="SUBCOMMAND", required=True)
    rg = rsub.add_parser("generate", help="write the zero-skip matrix-vector block as Verilog")
    rg.add_argument("--config", help="accelerator YAML: rows = pes x lanes, weight_bits 1 or 2, act_bits")
    rg.add_argument("--columns", type=positive(int), default=64, help="state entries (weight columns)")
    rg.add_argument("--model", help="a small .lrnn model: write its whole first-layer time step (weights and "
                    "folded batch norm in ROMs) instead of the bare matrix-vector block")
    rg.add_argument("-o", "--output", default="build", help="output folder (default build)")
    rf = rsub.add_parser("fixed", help="accuracy of the fixed-point datapath against the float runtime")
    rf.add_argument("model", help="a one-layer binary/ternary char- or word-LM .lrnn file")
    rf.add_argument("--steps", type=positive(int, most=MAX_HW_STEPS), default=300,
                    help=f"test tokens compared (default 300, at most {MAX_HW_STEPS:,})")
    rr = rsub.add_parser("report", help="Yosys synthesis (generic gates): PE variants, dense vs zero-skip")
    rr.add_argument("-o", "--output", default="build/synth", help="work folder (default build/synth)")
    fp = rsub.add_parser("fpga", help="place and route the datapath on a Lattice ECP5: LUT4/FF/DP16KD/MULT18X18D, "
                         "Fmax, time per step")
    fp.add_argument("--input-size", type=positive(int), default=64, help="layer input size (the demo's embedding: 64)")
    fp.add_argument("--hidden", type=positive(int), default=256, help="hidden size (the demo's: 256)")
    fp.add_argument("--lanes", type=positive(int), default=None,
                    help="accumulator lanes, at most the 4H gate rows, which run in ceil(4H/lanes) groups "
                         "(default 64, or 4H where that is fewer)")
    fp.add_argument("--modes", nargs="+", choices=["ternary", "binary", "int8"], default=["ternary", "binary", "int8"],
                    help="datapaths: ternary/binary zero-skip, int8 = 8-bit multiply-accumulate baseline")
    fp.add_argument("--part", choices=["LFE5U-25F", "LFE5U-45F", "LFE5U-85F", "LFE5UM-85F"], default="LFE5UM-85F",
                    help="ECP5 part (CABGA381, speed grade 6)")
    fp.add_argument("--model", help="a one-layer .lrnn whose zero-state trace times the step (else --state-density)")
    fp.add_argument("--state-density", type=float, default=0.0837,
                    help="assumed fraction of non-zero states without --model (default 0.0837)")
    fp.add_argument("--scan-chunk", type=int, default=16,
                    help="the zero-skip scanner in chunks of this many mask bits, a power of two (default 16: "
                         "two short carry chains instead of one over the whole mask, a faster clock at the same "
                         "cycles); 0 for one flat chain")
    fp.add_argument("-o", "--output", default="build/fpga", help="work folder; finished runs there are reused")
    return {"rtl": run}


def fpga(args) -> None:
    from ..rtl import run_fpga, scan_chunk
    if not 0.0 < args.state_density <= 1.0:
        raise checks.CliError(f"--state-density {args.state_density} must be in (0, 1]; "
                              "it is the fraction of non-zero hidden states")
    try:
        chunk = scan_chunk(args.scan_chunk)
    except ValueError as e:
        raise checks.CliError(str(e)) from None
    model = checks.model_file(args.model) if args.model else None
    lanes = args.lanes or min(64, 4 * args.hidden)
    run_fpga([(m, args.input_size, args.hidden, lanes) for m in args.modes], checks.output_dir(args.output, "-o"),
             args.part, model=model, state_density=args.state_density, scan_chunk=chunk)


def generate(args) -> None:
    from ..rtl import DEFAULT_ACCEL, write_matvec, write_model_step
    out = checks.output_dir(args.output, "-o")
    if args.model:
        r = write_model_step(checks.model_file(args.model), out)
        print(f"wrote {r['path']}: input {r['input']}, hidden {r['hidden']}, {r['bn_steps']} batch-norm steps")
        return
    r = write_matvec(accel_from(args.config) or DEFAULT_ACCEL, args.columns, out)
    print(f"wrote {r['path']}: {r['mode']} {r['columns']} columns x {r['rows']} rows, {r['act_bits']}-bit states, "
          f"{r['acc_bits']}-bit accumulators, zero-skip {r['skip']}")


def fixed(args) -> None:
    from ..rtl import fixed_point_accuracy
    for fmt, r in fixed_point_accuracy(checks.model_file(args.model), args.steps, log=print):
        print(f"{fmt.act_bits}-bit states ({fmt.act_frac} fractional), {1 << fmt.lut_bits}-entry tables: "
              f"mean |h error| {r['mean_abs_h_error']:.4f}, max {r['max_abs_h_error']:.3f}, "
              f"next-token KL {r['mean_kl_bits']:.4f} bits, top-1 agreement {r['top1_agreement']:.1%} "
              f"over {r['steps']} steps")


def synth_report(args) -> None:
    from ..rtl import format_report, report
    print(format_report(report(checks.output_dir(args.output, "-o"))))


def run(args, argv) -> int:
    {"generate": generate, "fixed": fixed, "report": synth_report, "fpga": fpga}[args.rtl_command](args)
    return 0
