"""The zero-skip LSTM datapath on a Lattice ECP5 (open toolchain), beside the published FPGA RNN accelerators.

For the ternary and binary zero-skip datapaths and the 8-bit multiply-accumulate baseline with the
same lanes and controller: LUT4 / FF / DP16KD / MULT18X18D use and Fmax from nextpnr-ecp5 on the
LFE5UM-85F (speed grade 6), at the `leanrnn demo` model's size (input 64, hidden 256) and at the
largest hidden size whose weights fit the part's 208 block RAMs. Time per step: `leanrnn.hw`'s cycles
of this datapath (plus LstmStep's one-entry-per-cycle gate unit) over Fmax, at the state density given
by --model's zero-state trace or, without one, 8.37% (measured on the trained ternary
char-LM of the same size: `results/hw/hw_report.json`, `measured_state_density`).

Run: python benchmarks/fpga.py [--model m.lrnn] [--configs demo]   (writes benchmarks/fpga.json; each
     full-size run takes tens of minutes on one core, finished runs in --workdir are reused)
     python benchmarks/fpga.py --markdown          (the docs/synthesis.md table, from that JSON)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).with_name("fpga.json")
X, H_DEMO, LANES, PART = 64, 256, 64, "LFE5UM-85F"

# Published numbers (abstracts), with what differs from the rows above.
PEERS = [
    {"design": "DeltaRNN (Gao et al., FPGA 2018)", "platform": "Xilinx Zynq-7100",
     "model": "1-layer GRU, 256 units", "sparsity": "temporal (delta threshold on inputs and states)",
     "weights": "not stated in the abstract", "throughput": "1.2 TOp/s effective", "power": "164 GOp/s/W",
     "source": "DeltaRNN: A Power-efficient Recurrent Neural Network Accelerator, FPGA 2018 (abstract)"},
    {"design": "EdgeDRNN (Gao et al., IEEE JETCAS 10(4), 2020)",
     "platform": "entry-level USB-powered FPGA board (a Zynq-7007S MiniZed: not in the abstract, unverified)",
     "model": "2-layer GRU, 5 M parameters", "sparsity": "temporal (delta threshold)",
     "weights": "DRAM, 8-bit; 16-bit activations", "throughput": "20.2 GOp/s effective (batch 1, mean)",
     "power": "2.42 W wall plug (whole board)",
     "source": ("EdgeDRNN: Recurrent Neural Network Accelerator for Edge Inference, arXiv:2012.13600 (abstract); "
                "widths from github.com/SensorsINI/EdgeDRNN hdl/edgedrnn.sv")},
]


MODES = ("ternary", "binary", "int8")


def configs(which: str, lanes: int = LANES) -> list[tuple]:
    from leanrnn.rtl.fpga import largest_hidden
    demo = [(m, X, H_DEMO, lanes) for m in MODES]
    largest = [(m, X, largest_hidden(m, X, lanes), lanes) for m in MODES]
    return {"demo": demo, "largest": largest, "all": demo + largest, "ternary-demo": demo[:1]}[which]


def run(model: str | None, workdir: str, which: str, modes: tuple = MODES, lanes: int = LANES,
        scan_chunk: int | None = None) -> None:
    from leanrnn.rtl.fpga import run_fpga

    key = lambda r: (r["mode"], r["input_size"], r["hidden"], r["lanes"], r.get("scan_chunk"))  # noqa: E731

    def save(rows):  # after every row: a long run that stops keeps what it finished; other rows stay (read
        # again at each save, so that two runs at once keep each other's rows)
        old = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
        new = {key(r) for r in rows}
        merged = sorted([r for r in old if key(r) not in new] + rows,
                        key=lambda r: (r["hidden"] != H_DEMO, -r["lanes"], r["hidden"], MODES.index(r["mode"]),
                                       r.get("scan_chunk") or 0))
        OUT.write_text(json.dumps({"part": PART, "model": model, "rows": merged, "peers": PEERS},
                                  indent=1))
        print(f"wrote {OUT} ({len(merged)} rows, {len(rows)} from this run)")

    run_fpga([c for c in configs(which, lanes) if c[0] in modes], workdir, PART, model=model, on_row=save,
             scan_chunk=scan_chunk)


def scanner(r: dict) -> str:
    return f"chunks of {r['scan_chunk']}" if r.get("scan_chunk") else "flat"


def markdown(data: dict) -> str:
    name = {"ternary": "ternary zero-skip", "binary": "binary zero-skip", "int8": "8-bit MAC, zero-skip"}
    lines = [(f"Part {data['part']} (CABGA381, speed grade 6), 16-bit states, two accumulator banks; time per step "
              "at the state density of the trace column (dense: every state column)."), "",
             ("| datapath | lanes | scanner | input x hidden | weights (Kbit) | LUT4 | FF | DP16KD | MULT18X18D "
              "| Fmax (MHz) | cycles/step | µs/step | µs/step, dense states | effective GOp/s | state trace |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        lines.append(
            f"| {name[r['mode']]} | {r['lanes']} | {scanner(r)} | {r['input_size']} x {r['hidden']} "
            f"| {r['weight_kbit']:.0f} | "
            f"{r['lut4']} / {r['lut4_available']} | {r['ff']} / {r['ff_available']} | "
            f"{r['dp16kd']} / {r['dp16kd_available']} | {r['mult18x18d']} / {r['mult18x18d_available']} | "
            f"{r['fmax_mhz']:.1f} | {r['cycles_per_step']:.0f} | {r['us_per_step']:.2f} | "
            f"{r['us_per_step_dense']:.2f} | {r['gops']:.2f} | {r['trace']} |")
    lines += ["", "| published design | platform | model | sparsity | weights | throughput | power | source |",
              "|---|---|---|---|---|---|---|---|"]
    for p in data["peers"]:
        lines.append(f"| {p['design']} | {p['platform']} | {p['model']} | {p['sparsity']} | {p['weights']} | "
                     f"{p['throughput']} | {p['power']} | {p['source']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print the table from the committed JSON; no runs")
    ap.add_argument("--model", help="a one-layer .lrnn of input 64, hidden 256 whose zero-state trace times the step")
    ap.add_argument("--workdir", default="build/fpga",
                    help="where the Verilog, netlists and nextpnr logs go; finished runs there are reused")
    ap.add_argument("--configs", choices=["demo", "largest", "all", "ternary-demo"], default="all",
                    help="the demo model's size, the largest that fits, or both")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                    help="which datapaths (default: all three)")
    ap.add_argument("--lanes", type=int, default=LANES, help="datapath lanes (default: %(default)s)")
    ap.add_argument("--scan-chunk", type=int, default=16, help="the zero-skip scanner in chunks of this many mask "
                    "bits, a power of two (default %(default)s); 0: one flat chain over the whole mask")
    args = ap.parse_args()
    from leanrnn.rtl import scan_chunk
    try:
        chunk = scan_chunk(args.scan_chunk)
    except ValueError as e:
        ap.error(str(e))
    if args.markdown:
        print(markdown(json.loads(OUT.read_text())))
    else:
        run(args.model, args.workdir, args.configs, tuple(args.modes), args.lanes, chunk)


if __name__ == "__main__":
    main()
