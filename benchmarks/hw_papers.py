"""Reproduce the papers' accelerator headline ratios with leanrnn.hw's presets and show where each
comes from. Run: python benchmarks/hw_papers.py"""
from __future__ import annotations

import json

from leanrnn.hw import analytic
from leanrnn.hw.presets import (DATE_STATE_DENSITY, PTB_CHAR, date_accel, iclr_binary, iclr_fp12,
                                iclr_ternary)


def main() -> dict:
    wl = PTB_CHAR
    fp, b, t = (analytic(f(), wl) for f in (iclr_fp12, iclr_binary, iclr_ternary))
    dense = analytic(date_accel(False), wl, 1.0)
    sparse = analytic(date_accel(True), wl, DATE_STATE_DENSITY)
    rows = [
        ("ICLR19 memory, binary vs 12-bit", fp.weight_bits / b.weight_bits, 12.0),
        ("ICLR19 memory, ternary (2-bit) vs 12-bit", fp.weight_bits / t.weight_bits, None),
        ("ICLR19 speed, binary vs 12-bit", fp.cycles / b.cycles, 10.0),
        ("ICLR19 speed, ternary vs 12-bit", fp.cycles / t.cycles, None),
        ("DATE19 speed, sparse vs dense states", dense.cycles / sparse.cycles, 5.2),
        ("DATE19 energy, sparse vs dense states", dense.energy_per_step_pj / sparse.energy_per_step_pj, 5.2),
    ]
    print(f"workload: input {wl.input_size} (one-hot chars), hidden {wl.hidden_size}")
    print(f"{'ratio':<44}{'model':>8}{'paper':>8}")
    for name, v, paper in rows:
        print(f"{name:<44}{v:>7.2f}x{'' if paper is None else f'{paper:>7.1f}x':>8}")
    print("\nwhere they come from (cycles per step):")
    for r in (fp, b, t, dense, sparse):
        print(f"  {r.accel:<34} matrix-vector {r.mv_cycles / r.steps:8.0f}  gates {r.gate_cycles / r.steps:6.0f}  "
              f"total {r.cycles_per_step:8.0f}  energy {r.energy_per_step_pj / 1e3:9.1f} nJ "
              f"({', '.join(f'{k} {v / r.steps / 1e3:.0f}' for k, v in r.energy_pj.items())})")
    out = {name: {"model": v, "paper": p} for name, v, p in rows}
    with open("benchmarks/hw_papers.json", "w") as f:
        json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
