"""Per-step latency at batch 1, one thread: leanrnn's runtime against numpy, PyTorch and ONNX Runtime.

Run: python benchmarks/bench_runtime.py [--quick] [--hidden 256 1000 2048]   (--help for every flag)
     python benchmarks/bench_runtime.py --markdown    # README tables from the committed JSON

What is timed, for every implementation alike: one step of a character language model on a stream
of token ids, the state fed back: embedding row (vocabulary 64, embedding width 64, so a dense
64-wide input) → LSTM cell (hidden H) → 64-class output layer. Token ids are uniform random
(seeded); every implementation sees the same ids.

* leanrnn: ``LanguageModel`` exported with ``model_to_lrnn`` / ``write_lrnn``, run by
  ``Model.step``. For the 90%-zero rows the pruning threshold is set by bisection so that, on the
  stream's ids (``--calib-steps`` of them after 50 start-up steps), 90% of the hidden states fed
  back are zero; the zero fraction reported is the one measured over all timed steps. Rows: ternary 90%, binary 90%,
  ternary 0%, fp32 0%.
* Peers (one set of random fp32 weights, checked to agree with numpy within 1e-4): numpy fp32 (one
  BLAS gemv over ``[x; h]``), ``nn.LSTMCell`` with oneDNN off and on, torch dynamic int8
  ``LSTMCell`` and ``LSTM`` (``quantize_dynamic`` with ``nn.Linear``), ONNX Runtime's ``LSTM`` op
  fp32 and int8 (``onnxruntime.quantization.quantize_dynamic``), and ``nn.LSTM`` called once per
  step, a labelled row that is never a reference.

Timing: ``--rounds`` rounds; each round times every implementation once over ``--steps`` steps (the
order rotates by one per round), so machine noise hits all alike. Reported: the median over rounds
of the mean step time, and the interquartile range. Ratios are ``t_reference / t``: against numpy
fp32, the fastest torch option (``nn.LSTM`` stepped excluded) and the fastest int8 peer, all from
the same run.

Multi-stream (``--streams B``, at ``--streams-hidden``): ``B`` independent streams advanced together,
tokens per second: numpy's batched step (one sgemm per step) against leanrnn's ternary 90% model
(the threshold calibrated at batch 1) stepped with ``(B,)`` token ids, interleaved rounds as above.

Bound: ``bytes read per step / read bandwidth at the working set's footprint``. Bytes per step are
the weights one step reads (leanrnn: one row of its ``(V, 4H)`` float32 input-projection table, the
``W_hh`` and output-layer rows of non-zero states at the measured zero fraction, one int8 code per
weight as the runtime holds them, fp32 scales and biases; peers: all their weights, int8 where
quantized). The working set is every weight a step can touch (the whole ``W_hh``, the input table
or embedding); its bandwidth is the fastest read of an array of
that many bytes, summed once after every round (``_membw.py``), and the cache level it fits in
(sysfs) is shown. It counts memory traffic only and is meant as a floor on a step's time, but it is an
estimate, not a proof: one array's sum can read slower than a step's access pattern (in the committed
run the 66.6 MiB probe read 20.8 GB/s where the table below measured 27.2 GB/s at 64 MiB, and the
probes of equal 369 KB int8 working sets read 90 and 155 GB/s), so ``x_bound`` can fall below 1 (fp32
at hidden 2048: 0.83). A table of
read bandwidths at 256 KiB ... 1 GiB (beyond this machine's 480 MiB L3: DRAM) is measured before
and after the rounds (the faster kept).
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _report  # noqa: E402

LEANRNN_ROWS = (("ternary", 0.9), ("binary", 0.9), ("ternary", 0.0), ("fp", 0.0))
CALIB_BURN = 50  # steps from the zero state not counted when the threshold is set


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 1000, 2048],
                    help="hidden sizes (default: %(default)s)")
    ap.add_argument("--input", type=int, default=64, help="embedding width fed to the LSTM (default: %(default)s)")
    ap.add_argument("--vocab", type=int, default=64, help="vocabulary = output classes (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=15,
                    help="interleaved rounds; medians over them (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=100, help="steps per implementation per round (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=20,
                    help="untimed steps per implementation first (default: %(default)s)")
    ap.add_argument("--calib-steps", type=int, default=400,
                    help="steps of the stream the pruning threshold is set on (default: %(default)s)")
    ap.add_argument("--zeros", type=float, default=0.9,
                    help="target zero-state fraction of the pruned rows (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the weights and the token stream (default: %(default)s)")
    ap.add_argument("--streams", type=int, default=16,
                    help="streams of the multi-stream rows; 0: none (default: %(default)s)")
    ap.add_argument("--streams-hidden", type=int, nargs="+", default=[1000],
                    help="hidden sizes of the multi-stream rows (default: %(default)s)")
    ap.add_argument("--json", default=None,
                    help="output JSON (default: benchmarks/bench_runtime.json; with --quick, none unless given)")
    ap.add_argument("--quick", action="store_true", help="smoke check: 3 rounds of 20 steps, hidden 256 only "
                    "unless --hidden is given; writes no JSON unless --json is given")
    ap.add_argument("--markdown", action="store_true",
                    help="print the README tables from the JSON (--json or the committed one) and exit; times nothing")
    a = ap.parse_args(argv)
    if a.quick:
        a.rounds, a.steps, a.warmup, a.calib_steps = 3, 20, 5, 150
        if "--hidden" not in (argv if argv is not None else sys.argv[1:]):
            a.hidden = [256]
    if a.json is None and not a.quick:
        a.json = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_runtime.json")
    if not 0.0 <= a.zeros < 1.0:
        ap.error(f"--zeros {a.zeros} must be in [0, 1)")
    if min(a.rounds, a.steps, a.calib_steps, *a.hidden) < 1:
        ap.error("--rounds, --steps, --calib-steps and --hidden must be positive")
    return a


# -- leanrnn -------------------------------------------------------------------------------------
def _export(weights: str, H: int, a):
    """Header and tensors of an untrained ``LanguageModel`` through the public exporter."""
    import torch

    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.tasks import LanguageModel
    torch.manual_seed(a.seed + 1)
    m = LanguageModel(a.vocab, H, embed_size=a.input, weights=weights, batch_norm=False).eval()
    return model_to_lrnn(m, {"task": "char-lm"}, [f"t{i}" for i in range(a.vocab)])


def _zeros_at(header, tensors, thr: float, path: str, ids, burn: int) -> float:
    """Zero fraction of the states fed back over ``ids[burn:]`` (after the start-up from h = 0,
    which has more zeros than the steady state the timed steps run in)."""
    from leanrnn.export import write_lrnn
    from leanrnn.runtime import Model
    header["layers"][0]["threshold"] = float(thr)
    write_lrnn(path, header, tensors)
    m = Model.load(path)
    st = m.initial_state(1)
    for t in ids[:burn]:
        m.step(t, st)
    s0 = st.sparsity()[0]
    for t in ids[burn:]:
        m.step(t, st)
    return (st.sparsity()[0] * len(ids) - s0 * burn) / (len(ids) - burn)


def leanrnn_impl(weights: str, zeros: float, H: int, a, tmp: str, ids) -> dict:
    """Export, set the threshold for ``zeros`` on the calibration ids (bisection: the smallest
    threshold that reaches the target), and return the row's runner."""
    from leanrnn.export import write_lrnn
    from leanrnn.runtime import Model
    path = os.path.join(tmp, f"{weights}-{zeros}-{H}.lrnn")
    header, tensors = _export(weights, H, a)
    lo, hi = 0.0, 1.0  # |h| = |o tanh(c)| < 1
    if zeros > 0:
        for _ in range(18):
            mid = 0.5 * (lo + hi)
            z = _zeros_at(header, tensors, mid, path, ids[: CALIB_BURN + a.calib_steps], CALIB_BURN)
            lo, hi = (lo, mid) if z >= zeros else (mid, hi)
    thr = hi if zeros > 0 else 0.0
    header["layers"][0]["threshold"] = thr
    write_lrnn(path, header, tensors)
    m = Model.load(path)
    state = m.initial_state(1)

    def run(ids_):
        y = None
        for t in ids_:
            y, _ = m.step(t, state)
        return y
    V, bw = a.vocab, 4 if weights == "fp" else 1
    fixed = 4 * 4 * H + 3 * 4 * H * 4 + 4 * V  # one table row, scales and bias, output bias
    name = f"leanrnn {'fp32' if weights == 'fp' else weights}, {zeros:.0%} zeros"
    return {"name": name, "kind": "leanrnn", "framework": "leanrnn", "run": run, "state": state, "model": m,
            "threshold": thr, "fixed_bytes": fixed, "row_bytes": 4 * H * bw + 4 * V,
            "working_set": fixed + 4 * H * H * bw + 4 * V * H + 4 * V * 4 * H, "H": H,
            "note": f"threshold {thr:.4g}; {'fp32' if bw == 4 else 'int8 codes'} in memory; "
                    f"(V, 4H) float32 input table"}


# -- timing --------------------------------------------------------------------------------------
def interleave(impls: list, ids, a, after_round=lambda: None) -> None:
    """Warm up, then ``a.rounds`` rounds that each run every impl once over ``a.steps`` steps, the
    order rotated each round so machine noise hits all alike; each impl's ``times`` gets one mean step
    time per round."""
    pos = a.warmup
    for im in impls:
        im["run"](ids[: a.warmup])
        im["times"] = []
    gc.disable()
    try:
        for r in range(a.rounds):
            chunk = ids[pos: pos + a.steps]
            pos += a.steps
            for k in range(len(impls)):
                im = impls[(k + r) % len(impls)]
                t0 = time.perf_counter()
                im["run"](chunk)
                im["times"].append((time.perf_counter() - t0) / a.steps)
            after_round()
    finally:
        gc.enable()


def time_rounds(impls: list, ids, a) -> None:
    """``interleave``; after each round every working-set probe reads its array once more (fastest
    read kept), so the bandwidth bounds see the same machine state as the timings."""
    import _membw
    probes = {ws: _membw.ReadProbe(ws) for ws in sorted({im["working_set"] for im in impls})}

    def probe():
        for p in probes.values():
            p.measure(1)
    interleave(impls, ids, a, probe)
    for im in impls:
        im["bandwidth"] = probes[im["working_set"]].best


def bench_hidden(H: int, a, tmp: str, caches: dict, notes: list) -> list[dict]:
    import _membw
    import _peers
    rng = np.random.default_rng(a.seed)
    ids = [int(t) for t in rng.integers(0, a.vocab, a.warmup + a.rounds * a.steps + a.calib_steps + CALIB_BURN)]
    w = _peers.Weights(a.vocab, a.input, H, a.seed)
    peers = [_peers.numpy_peer(w)] + _peers.torch_peers(w)
    ort, note = _peers.ort_peers(w, tmp)
    if note and note not in notes:
        notes.append(note)
        print(note)
    peers += ort
    diffs = _peers.check_peers(peers, ids[:20])
    impls = [{"name": p.name, "kind": p.kind, "framework": p.framework, "run": p.run,
              "note": "; ".join(x for x in (p.note, f"max |logit - numpy's| after 20 steps {diffs[p.name]:.1e}") if x),
              "bytes": p.bytes_per_step, "working_set": p.bytes_per_step + 4 * a.vocab * a.input} for p in peers]
    t0 = time.perf_counter()
    impls += [leanrnn_impl(wt, z, H, a, tmp, ids) for wt, z in LEANRNN_ROWS]
    print(f"hidden {H}: leanrnn models exported and calibrated in {time.perf_counter() - t0:.1f} s; timing "
          f"{len(impls)} implementations x {a.rounds} rounds x {a.steps} steps")
    time_rounds(impls, ids, a)
    rows = []
    for im in impls:
        t = np.array(im["times"]) * 1e6
        row = {"hidden": H, "impl": im["name"], "kind": im["kind"], "framework": im["framework"],
               "note": im["note"], "us_median": float(np.median(t)), "us_q1": float(np.percentile(t, 25)),
               "us_q3": float(np.percentile(t, 75)), "us_rounds": [round(float(x), 2) for x in t]}
        if im["kind"] == "leanrnn":
            z = float(im["state"].sparsity()[0])
            row.update(state_zeros=z, threshold=im["threshold"])
            im["bytes"] = int(im["fixed_bytes"] + (1 - z) * H * im["row_bytes"])
        ws, bw = int(im["working_set"]), im["bandwidth"]
        row.update(bytes_per_step=int(im["bytes"]), working_set_bytes=ws, level=_membw.level_of(ws, caches),
                   bandwidth_GBps=bw / 1e9, bound_us=im["bytes"] / bw * 1e6)
        row["x_bound"] = row["us_median"] / row["bound_us"]
        rows.append(row)
    _report.add_ratios(rows)
    return rows


def bench_streams(H: int, a, tmp: str) -> list[dict]:
    """Tokens per second of ``a.streams`` streams: numpy's batched step against leanrnn ternary 90%."""
    import _peers
    B = a.streams
    rng = np.random.default_rng(a.seed + 7)
    n = a.warmup + a.rounds * a.steps
    ids = rng.integers(0, a.vocab, (n + a.calib_steps + CALIB_BURN, B))
    peer = _peers.numpy_batched_peer(_peers.Weights(a.vocab, a.input, H, a.seed), B)
    lean = leanrnn_impl("ternary", a.zeros, H, a, tmp, [int(t) for t in ids[:, 0]])
    m = lean["model"]
    state = m.initial_state(B)

    def run(ids_):
        for t in ids_:
            m.step(t, state)
    impls = [{"name": peer.name, "run": peer.run}, {"name": f"leanrnn ternary, {a.zeros:.0%} zeros, {B} streams",
                                                     "run": run, "threshold": lean["threshold"]}]
    interleave(impls, ids, a)
    rows = []
    for im in impls:
        v = B / np.array(im["times"])
        rows.append({"hidden": H, "streams": B, "impl": im["name"], "tokens_per_s": float(np.median(v)),
                     "q1": float(np.percentile(v, 25)), "q3": float(np.percentile(v, 75))})
    rows[1]["state_zeros"] = float(state.sparsity()[0])
    rows[1]["threshold"] = lean["threshold"]
    for r in rows:
        r["vs_numpy"] = r["tokens_per_s"] / rows[0]["tokens_per_s"]
    return rows


def machine() -> dict:
    import _membw
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "caches_bytes": _membw.cache_sizes()}


def versions() -> dict:
    import numba
    import torch
    v = {"python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
         "torch": torch.__version__}
    try:
        import onnx
        import onnxruntime
        v.update(onnxruntime=onnxruntime.__version__, onnx=onnx.__version__)
    except ImportError:
        pass
    return v


def main(argv=None) -> dict:
    a = _args(argv)
    if a.markdown:
        path = a.json or os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_runtime.json")
        with open(path) as f:
            print(_report.markdown(json.load(f)))
        return {}
    import torch

    import _membw
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    caches = _membw.cache_sizes()
    sizes = [256 << 10, 1 << 20, 8 << 20, 64 << 20, 256 << 20, max(1 << 30, 2 * caches.get("L3", 0))]
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(),
           "versions": versions(), "threads": 1, "batch": 1, "quick": a.quick,
           "rounds": a.rounds, "steps_per_round": a.steps, "warmup": a.warmup, "calib_steps": a.calib_steps,
           "target_zeros": a.zeros, "seed": a.seed, "input": f"embedding {a.vocab} x {a.input} (dense {a.input}-wide "
           f"input), uniform random token ids", "output_classes": a.vocab, "notes": [], "rows": []}
    bw = {f"{s >> 10} KiB": _membw.read_bandwidth(s) / 1e9 for s in sizes}
    res["read_bandwidth_GBps"] = {k: {"GBps": v, "level": _membw.level_of(int(k.split()[0]) << 10, caches)}
                                  for k, v in bw.items()}
    print(f"{res['machine']['cpu']}, {res['machine']['cores']} cores; one thread, batch 1; read bandwidth "
          + ", ".join(f"{k} {v['GBps']:.0f} GB/s ({v['level']})" for k, v in res["read_bandwidth_GBps"].items()))
    with tempfile.TemporaryDirectory() as tmp:
        for H in a.hidden:
            rows = bench_hidden(H, a, tmp, caches, res["notes"])
            print(_report.table(rows))
            res["rows"] += rows
        res["streams"] = []
        for H in a.streams_hidden if a.streams > 0 else []:
            res["streams"] += bench_streams(H, a, tmp)
        if res["streams"]:
            print(_report.streams_table(res["streams"]))
    for s in sizes:  # again after the rounds: the faster of the two
        k = f"{s >> 10} KiB"
        res["read_bandwidth_GBps"][k]["GBps"] = max(res["read_bandwidth_GBps"][k]["GBps"],
                                                    _membw.read_bandwidth(s) / 1e9)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"\nwrote {a.json}")
    else:
        print("\n(--quick: no JSON written; pass --json PATH to keep one)")
    return res


if __name__ == "__main__":
    main()
