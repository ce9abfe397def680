"""Ratios and tables of ``bench_runtime.py``: the printed table and the README markdown, both from
the rows the JSON holds (so README is regenerated from the artifact with ``--markdown``).

References per hidden size, all measured in the same run: numpy fp32; the fastest torch option
(fp32 ``nn.LSTMCell`` either oneDNN setting, or dynamic int8; ``nn.LSTM`` stepped excluded); the
fastest int8 peer (ONNX Runtime int8 or torch dynamic int8). A ratio is ``t_reference / t``.
"""
from __future__ import annotations

REFS = (("vs_numpy", "numpy", lambda r: r["framework"] == "numpy"),
        ("vs_fastest_torch", "fastest torch", lambda r: r["framework"] == "torch" and r["kind"] != "labelled"),
        ("vs_fastest_int8", "fastest int8 peer", lambda r: r["kind"] == "int8"))


def add_ratios(rows: list[dict]) -> None:
    """Adds ``vs_*`` ratios and ``ref_*`` names (the reference row each ratio divides) to every row."""
    for key, _, pick in REFS:
        cands = [r for r in rows if pick(r)]
        if not cands:
            continue
        ref = min(cands, key=lambda r: r["us_median"])
        for r in rows:
            r[key] = ref["us_median"] / r["us_median"]
            r["ref_" + key[3:]] = ref["impl"]


def _x(r, key):
    return f"{r[key]:.2f}x" if key in r else "-"


def table(rows: list[dict]) -> str:
    H = rows[0]["hidden"]
    refs = ", ".join(f"{label}: {rows[0]['ref_' + k[3:]]}" for k, label, _ in REFS if "ref_" + k[3:] in rows[0])
    head = (f"\nhidden {H}  (references: {refs})\n"
            f"{'implementation':<40}{'zeros':>7}{'us/step':>10}{'IQR':>19}{'vs numpy':>10}{'vs torch':>10}"
            f"{'vs int8':>9}{'bytes/step':>12}{'work set':>11}{'level':>6}{'GB/s':>6}{'bound us':>9}{'x bound':>8}")
    out = [head]
    for r in rows:
        z = f"{r['state_zeros']:.1%}" if "state_zeros" in r else "-"
        iqr = f"{r['us_q1']:.1f}-{r['us_q3']:.1f}"  # interquartile range over rounds
        out.append(f"{r['impl']:<40}{z:>7}{r['us_median']:>10.1f}{iqr:>19}{_x(r, 'vs_numpy'):>10}"
                   f"{_x(r, 'vs_fastest_torch'):>10}{_x(r, 'vs_fastest_int8'):>9}{r['bytes_per_step']:>12,}"
                   f"{r['working_set_bytes'] / 2**20:>9.2f}Mi{r['level']:>6}{r['bandwidth_GBps']:>6.0f}"
                   f"{r['bound_us']:>9.1f}{r['x_bound']:>7.1f}x")
    return "\n".join(out)


def streams_table(rows: list[dict], md: bool = False) -> str:
    """Multi-stream rows: median tokens per second [IQR] and the ratio to numpy's batched step."""
    if md:
        out = ["| multi-stream implementation | hidden | streams | zeros | tokens/s [IQR] | vs numpy batched |",
               "|---|---|---|---|---|---|"]
        for r in rows:
            z = f"{r['state_zeros']:.1%}" if "state_zeros" in r else "-"
            out.append(f"| {r['impl']} | {r['hidden']} | {r['streams']} | {z} | {r['tokens_per_s']:,.0f} "
                       f"[{r['q1']:,.0f}–{r['q3']:,.0f}] | {r['vs_numpy']:.2f}x |")
        return "\n".join(out)
    out = [f"\n{'multi-stream implementation':<44}{'hidden':>7}{'zeros':>7}{'tokens/s':>11}{'IQR':>19}{'vs numpy':>10}"]
    for r in rows:
        z = f"{r['state_zeros']:.1%}" if "state_zeros" in r else "-"
        iqr = f"{r['q1']:,.0f}-{r['q3']:,.0f}"
        out.append(f"{r['impl']:<44}{r['hidden']:>7}{z:>7}{r['tokens_per_s']:>11,.0f}{iqr:>19}{r['vs_numpy']:>9.2f}x")
    return "\n".join(out)


def markdown(res: dict) -> str:
    """Two README tables: every row's median [IQR] per hidden size, then leanrnn's ratios and bounds."""
    rows = res["rows"]
    Hs = sorted({r["hidden"] for r in rows})
    names = list(dict.fromkeys(r["impl"] for r in rows))
    by = {(r["impl"], r["hidden"]): r for r in rows}
    m, v = res["machine"], res["versions"]
    lines = [f"Batch 1, one thread, {res['input']}, {res['output_classes']}-class output layer in every "
             f"implementation; median µs per step over {res['rounds']} interleaved rounds of "
             f"{res['steps_per_round']} steps [interquartile range]; {m['cpu']}, {m['cores']} cores, "
             + ", ".join(f"{k} {x}" for k, x in v.items() if k != "python") + f"; {res['date'][:10]}.", "",
             "| implementation | " + " | ".join(f"hidden {H}" for H in Hs) + " |",
             "|---|" + "---|" * len(Hs)]
    for n in names:
        cells = []
        for H in Hs:
            r = by.get((n, H))
            if r is None:
                cells.append("-")
                continue
            z = f", {r['state_zeros']:.1%} zeros" if "state_zeros" in r and r["impl"].endswith("% zeros") and \
                not r["impl"].endswith(" 0% zeros") else ""
            cells.append(f"{r['us_median']:.1f} [{r['us_q1']:.1f}–{r['us_q3']:.1f}]{z}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", ("| leanrnn row | hidden | measured zeros | µs | vs numpy fp32 | vs fastest torch | "
                   "vs fastest int8 peer | bytes/step | working set (level) | bound µs | x bound |"),
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["kind"] != "leanrnn":
            continue
        lines.append(f"| {r['impl']} | {r['hidden']} | {r['state_zeros']:.1%} | {r['us_median']:.1f} | "
                     f"{_x(r, 'vs_numpy')} | {_x(r, 'vs_fastest_torch')} | {_x(r, 'vs_fastest_int8')} | "
                     f"{r['bytes_per_step'] / 1e3:,.0f} kB | {r['working_set_bytes'] / 2**20:.2f} MiB ({r['level']}) | "
                     f"{r['bound_us']:.1f} | {r['x_bound']:.1f}x |")
    refs = {}
    for r in rows:
        for k, label, _ in REFS:
            if "ref_" + k[3:] in r:
                refs.setdefault(r["hidden"], {})[label] = r["ref_" + k[3:]]
    lines += ["", "References (same run): " + "; ".join(
        f"hidden {H}: " + ", ".join(f"{lab} = {n}" for lab, n in d.items()) for H, d in sorted(refs.items()))]
    bw = res.get("read_bandwidth_GBps", {})
    if bw:
        lines.append("Read bandwidth (one thread, same run): " + ", ".join(
            f"{k} {x['GBps']:.0f} GB/s ({x['level']})" for k, x in bw.items()) + ".")
    lines += [f"Note: {n}" for n in res.get("notes", [])]
    if res.get("streams"):
        lines += ["", streams_table(res["streams"], md=True)]
    return "\n".join(lines)
