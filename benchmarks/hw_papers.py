"""The papers' accelerator claims against leanrnn.hw, under sourced parameters and over the free ones.

For each claim: the ratio with every sourced parameter at its source's value and every free one at
its default ("model"), and the band (min, max) over every combination of the free parameters'
sweeps (``leanrnn.hw.presets``), with the share of combinations that fall below the claim. The
verdict says "reproduces" only when no free parameter moves the ratio and it matches the claim;
otherwise "falls within the band" or "does not". Always-on power enters energy linearly, so each
combination is evaluated once and its energy taken at every ``static_mw`` of the sweep.

Run: python benchmarks/hw_papers.py        (writes benchmarks/hw_papers.json)
     python benchmarks/hw_papers.py --markdown   (the README table, from that JSON)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from leanrnn.hw import amdahl_bound, analytic
from leanrnn.hw.presets import DATE19, ICLR19, SOURCES

OUT = Path(__file__).with_name("hw_papers.json")
REF_MW = 1.0   # always-on power each combination is evaluated at; energies are rescaled from it

CLAIMS = [  # key, preset, what, the paper's number (None: no claim, shown for context)
    ("iclr_memory_binary", "ICLR 2019", "weight memory, binary vs 12-bit", 12.0),
    ("iclr_memory_ternary", "ICLR 2019", "weight memory, ternary (2-bit codes) vs 12-bit", None),
    ("iclr_speed_binary", "ICLR 2019", "speed, binary vs 12-bit", 10.0),
    ("iclr_speed_ternary", "ICLR 2019", "speed, ternary vs 12-bit", None),
    ("date_speed", "DATE 2019", "speed, sparse vs dense states", 5.2),
    ("date_energy", "DATE 2019", "energy, sparse vs dense states", 5.2),
]
BY_CONSTRUCTION = {"iclr_memory_binary": "by construction: 12-bit / 1-bit weights",
                   "iclr_memory_ternary": "by construction: 12-bit / 2-bit codes"}


def _energy(r, static_mw: float) -> float:
    """Energy per step at ``static_mw``, from a report evaluated at ``REF_MW``."""
    s = r.energy_pj.get("static", 0.0)
    return (sum(r.energy_pj.values()) - s + s * static_mw / REF_MW) / r.steps


def iclr(values: dict) -> dict:
    """ICLR ratios: memory and cycles, which always-on power does not touch."""
    wl, c = ICLR19.configs(values)
    fp, b, t = (analytic(c[k], wl) for k in ("fp", "binary", "ternary"))
    return {"iclr_memory_binary": fp.weight_bits / b.weight_bits, "iclr_memory_ternary": fp.weight_bits / t.weight_bits,
            "iclr_speed_binary": fp.cycles / b.cycles, "iclr_speed_ternary": fp.cycles / t.cycles}


def date(values: dict, statics: tuple[float, ...]) -> list[dict]:
    """DATE ratios at each always-on power in ``statics``."""
    v = {**DATE19.defaults(), **values}
    wl, c = DATE19.configs({**values, "static_mw": REF_MW})
    dense, sparse = analytic(c["dense"], wl, 1.0), analytic(c["sparse"], wl, v["state_density"])
    return [{"date_speed": dense.cycles / sparse.cycles, "date_energy": _energy(dense, s) / _energy(sparse, s)}
            for s in statics]


def sweep() -> dict[str, np.ndarray]:
    """Each claim's ratio over every combination of its preset's free parameters."""
    ic = [iclr(v) for v in ICLR19.grid(skip=("static_mw",))]
    statics = DATE19.params["static_mw"].sweep
    dt = [r for v in DATE19.grid(skip=("static_mw",)) for r in date(v, statics)]
    return {k: np.array([r[k] for r in (ic if k.startswith("iclr") else dt)]) for k, *_ in CLAIMS}


def verdict(key: str, claim: float | None, lo: float, hi: float, model: float) -> str:
    if key in BY_CONSTRUCTION:
        return BY_CONSTRUCTION[key]
    if claim is None:
        return "no claim"
    half = 0.5 * 10 ** -(len(f"{claim:g}".partition(".")[2]))   # the claim's own rounding
    if np.isclose(lo, hi) and abs(model - claim) <= half:
        return "reproduces"
    return "falls within the band" if lo - half <= claim <= hi + half else "does not"


def main() -> dict:
    d = {**ICLR19.defaults(), **DATE19.defaults()}
    model = {**iclr({}), **date({}, (d["static_mw"],))[0]}
    bands = sweep()
    rows = []
    for key, paper, what, claim in CLAIMS:
        vals = bands[key]
        lo, hi = float(vals.min()), float(vals.max())
        rows.append({"key": key, "paper": paper, "what": what, "claim": claim, "model": model[key], "band": [lo, hi],
                     "combinations": int(vals.size),
                     "share_below_claim": None if claim is None else float(np.mean(vals < claim)),
                     "verdict": verdict(key, claim, lo, hi, model[key])})
    res = {"claims": rows, "workload": {"input_size": d["input_size"], "hidden_size": d["hidden_size"]},
           "free": {p.name: {k: list(a.sweep) for k, a in p.free().items()} for p in (ICLR19, DATE19)},
           "sources": SOURCES, "detail": detail()}
    print_table(res)
    OUT.write_text(json.dumps(res, indent=1) + "\n")
    print(f"\nwrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")
    return res


def detail() -> dict:
    """Where the default-parameter ratios come from: cycles and energy by phase, limits."""
    out = {}
    wl, c = ICLR19.configs()
    reps = {k: analytic(a, wl) for k, a in c.items()}
    wl2, c2 = DATE19.configs()
    dens = DATE19.defaults()["state_density"]
    reps["dense"], reps["sparse"] = analytic(c2["dense"], wl2, 1.0), analytic(c2["sparse"], wl2, dens)
    for k, r in reps.items():
        out[k] = {"accel": r.accel, "mv_cycles": r.mv_cycles / r.steps, "gate_cycles": r.gate_cycles / r.steps,
                  "cycles": r.cycles_per_step, "energy_nj": r.energy_per_step_pj / 1e3,
                  "energy_nj_by_part": {p: v / r.steps / 1e3 for p, v in r.energy_pj.items()}}
    d, s = reps["dense"], reps["sparse"]
    dyn = [(sum(r.energy_pj.values()) - r.energy_pj["static"]) for r in (d, s)]
    out["date_limits"] = {"amdahl_bound": amdahl_bound(c2["sparse"], wl2, dens),
                          "energy_gain_dynamic_only": dyn[0] / dyn[1],
                          "energy_gain_always_on_bound": d.cycles / s.cycles}
    return out


def print_table(res: dict) -> None:
    w = res["workload"]
    print(f"workload: char-level PTB LSTM, input {w['input_size']} (one-hot), hidden {w['hidden_size']}")
    print(f"{'claim':<56}{'paper':>6}{'model':>8}{'band':>16}{'below claim':>13}  verdict")
    for r in res["claims"]:
        claim = "" if r["claim"] is None else f"{r['claim']:g}x"
        below = "" if r["claim"] is None or r["key"] in BY_CONSTRUCTION else f"{r['share_below_claim']:.0%}"
        band = f"{r['band'][0]:.2f}-{r['band'][1]:.2f}x"
        print(f"{r['paper'] + ' ' + r['what']:<56}{claim:>6}{r['model']:>7.2f}x{band:>16}{below:>13}  {r['verdict']}")
    print("\nat the defaults, per step:")
    for k, v in res["detail"].items():
        if k == "date_limits":
            continue
        parts = ", ".join(f"{p} {e:.0f}" for p, e in v["energy_nj_by_part"].items())
        print(f"  {v['accel']:<32} matrix-vector {v['mv_cycles']:7.0f}  gates {v['gate_cycles']:5.0f}  total "
              f"{v['cycles']:7.0f} cycles  {v['energy_nj']:8.0f} nJ ({parts})")
    lim = res["detail"]["date_limits"]
    print(f"  DATE19 limits: Amdahl bound {lim['amdahl_bound']:.2f}x; "
          f"energy gain between {lim['energy_gain_dynamic_only']:.2f}x"
          f" (no always-on power) and {lim['energy_gain_always_on_bound']:.2f}x (always-on power dominating)")
    n = {p: int(np.prod([len(s) for s in f.values()])) for p, f in res["free"].items()}
    print("\nbands: every combination of " + "; ".join(f"{p}: {len(res['free'][p])} free parameters, {n[p]} "
                                                        "combinations" for p in n))


def markdown(res: dict) -> str:
    lines = [("| claim | paper | model, sourced parameters + default assumptions | band over the free assumptions "
              "| verdict |"), "|---|---|---|---|---|"]
    for r in res["claims"]:
        claim = "—" if r["claim"] is None else f"{r['claim']:g}x"
        where = ("" if r["claim"] is None or r["key"] in BY_CONSTRUCTION
                 else f" ({r['share_below_claim']:.0%} of it below the claim)")
        band = f"{r['band'][0]:.2f}x" if np.isclose(*r["band"]) else f"{r['band'][0]:.2f}x – {r['band'][1]:.2f}x"
        lines.append(f"| {r['paper']}: {r['what']} | {claim} | {r['model']:.2f}x | {band}{where} | {r['verdict']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help=f"print the README table from {OUT.name}")
    if ap.parse_args().markdown:
        if not OUT.exists():
            raise SystemExit(f"{OUT} does not exist: run python benchmarks/hw_papers.py first")
        print(markdown(json.loads(OUT.read_text())))
    else:
        main()
