"""Where one runtime step's time goes at batch 1: the calls and the kernels' parts, timed apart.

Run: python benchmarks/step_parts.py [--hidden 256 1000] [--json PATH]   (--help for every flag)
     python benchmarks/step_parts.py --markdown    # the README table from the committed JSON

The model is ``bench_runtime.py``'s ternary row (untrained ``LanguageModel``, vocabulary 64, embedding
64, 64-class output layer, threshold set for 90% zero states on the stream). Rows, per token:

* ``Model.step`` — the public call, as ``bench_runtime.py`` times it;
* ``kernels.step`` called directly — without ``Model.step``'s checks and the logits' copy;
* ``Model.run`` over the whole stream, per token — one compiled call: no Python per token;
* the parts, each alone in a compiled loop: the recurrent product over the live rows (their count
  measured on the stream), once with the same rows every call (they stay in L1: the product's
  arithmetic floor) and once with each step's own live rows from the stream's trace (rows come from
  L2 or further, as in a real step); the gates (``_gates`` on ``4H`` pre-activations); the output
  layer over the live rows.

Beside them: ``bench_runtime.py``'s memory bound for the same step (bytes per step / read bandwidth of
the working set), which counts traffic only. A part's time far above its bytes' time is arithmetic:
the int8 codes' conversion to float and the multiply-adds.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _membw  # noqa: E402
import bench_runtime  # noqa: E402
from leanrnn.runtime.kernels import _gates, spmv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 1000], help="hidden sizes (default: %(default)s)")
    ap.add_argument("--tokens", type=int, default=1000, help="tokens per timed pass (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=20, help="timed passes; the fastest is kept (default: %(default)s)")
    ap.add_argument("--json", default=os.path.join(HERE, "step_parts.json"), help="output JSON (default: %(default)s)")
    ap.add_argument("--markdown", action="store_true", help="print the README table from the JSON and exit")
    a = ap.parse_args(argv)
    if min(a.tokens, a.repeats, *a.hidden) < 1:
        ap.error("--tokens, --repeats and --hidden must be positive")
    return a


@njit(cache=True)
def _spmv_loop(W, X, acc, idx):
    """``acc += W^T x`` for each row ``x`` of ``X`` in turn (one step's state each)."""
    for t in range(X.shape[0]):
        spmv(W, X[t], acc, idx)


@njit(cache=True)
def _gates_loop(a_ih, a_hh, s, b, c, sc, thr, h, n):
    z = 0
    for _ in range(n):
        z += _gates(a_ih, a_hh, s, s, b, c, False, sc, b, thr, h)
    return z


def _best(f, repeats: int, n: int) -> float:
    """Fastest of ``repeats`` timed calls of ``f``, in µs per token (``n`` tokens per call)."""
    f()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def parts(H: int, a) -> dict:
    from leanrnn.runtime import kernels
    from leanrnn.runtime.model import _NO_X
    ba = bench_runtime._args(["--quick"])
    n = a.tokens
    ids = [int(t) for t in np.random.default_rng(0).integers(0, ba.vocab, 3 * n + 600)]
    with tempfile.TemporaryDirectory() as tmp:
        im = bench_runtime.leanrnn_impl("ternary", 0.9, H, ba, tmp, ids)
    m, st = im["model"], im["state"]
    toks = ids[600: 600 + n]
    seq = np.array(toks)
    trace, _ = m.trace_zero_masks(np.array(ids[600: 600 + n]))  # the states fed back, step by step
    masks = trace[0].reshape(n, -1)
    live = masks.sum(1)

    def model_step():
        for t in toks:
            m.step(t, st)

    def kernel_step():
        for t in toks:
            st._tokens[0] = t
            kernels.step(m._F, m._Q, m._M, st._S, st._N, _NO_X)
    rows = {"Model.step": _best(model_step, a.repeats, n),
            "kernels.step, called directly": _best(kernel_step, a.repeats, n),
            "Model.run, per token": _best(lambda: m.run(seq, st), a.repeats, n)}
    # the parts, on the model's own arrays: W_hh codes (H, 4H) and the output layer (H, V)
    spec = m.spec.layers[0]
    Q = np.ascontiguousarray(m._Q[m._M[kernels.M_HEAD + kernels.K_WHH]:][: H * 4 * H].reshape(H, 4 * H))
    Wo = np.ascontiguousarray(m._F[m._M[kernels.OUT_W]:][: H * ba.vocab].reshape(H, ba.vocab))
    rng = np.random.default_rng(1)
    X = np.where(masks, rng.uniform(0.1, 0.9, masks.shape), 0).astype(np.float32)  # each step's live rows
    k = int(np.argmin(np.abs(live - np.median(live))))
    X1 = np.repeat(X[k: k + 1], n, axis=0)  # one typical step's rows (median count), every time
    acc, idx = np.zeros(4 * H, np.float32), np.zeros(H, np.int64)
    y = np.zeros(ba.vocab, np.float32)
    rows["recurrent product, same live rows each step (L1)"] = _best(lambda: _spmv_loop(Q, X1, acc, idx), a.repeats, n)
    rows["recurrent product, each step's live rows"] = _best(lambda: _spmv_loop(Q, X, acc, idx), a.repeats, n)
    f32 = np.float32
    g = rng.standard_normal(4 * H).astype(f32)
    c, h, one, zero = np.zeros(H, f32), np.zeros(H, f32), np.ones(4 * H, f32), np.zeros(4 * H, f32)
    rows["gates (4H pre-activations, c, h, pruning)"] = _best(
        lambda: _gates_loop(g, g.copy(), one, zero, c, one[:H], f32(0.05), h, n), a.repeats, n)
    rows["output layer over each step's live rows"] = _best(lambda: _spmv_loop(Wo, X, y, idx), a.repeats, n)
    z = float(1 - live.mean() / H)
    nbytes = int(im["fixed_bytes"] + (1 - z) * H * im["row_bytes"])
    bw = _membw.read_bandwidth(int(im["working_set"]))
    return {"hidden": H, "weights": spec.weights, "state_zeros": z, "live_rows_mean": float(live.mean()),
            "bytes_per_step": nbytes, "working_set_bytes": int(im["working_set"]), "bandwidth_GBps": bw / 1e9,
            "bound_us": nbytes / bw * 1e6, "us_per_token": rows}


def markdown(res: dict) -> str:
    hs = [r["hidden"] for r in res["rows"]]
    out = [f"Batch 1, one thread, ternary, µs per token (fastest of {res['repeats']} passes of {res['tokens']} "
           f"tokens); {res['machine']}, {res['date'][:10]}.", "",
           "| part | " + " | ".join(f"hidden {h}" for h in hs) + " |", "|---|" + "---|" * len(hs)]
    for k in res["rows"][0]["us_per_token"]:
        out.append(f"| {k} | " + " | ".join(f"{r['us_per_token'][k]:.2f}" for r in res["rows"]) + " |")
    out.append("| live rows per step (measured zeros) | " + " | ".join(
        f"{r['live_rows_mean']:.1f} ({r['state_zeros']:.1%})" for r in res["rows"]) + " |")
    out.append("| memory bound: bytes per step / read bandwidth | " + " | ".join(
        f"{r['bound_us']:.2f} ({r['bytes_per_step'] / 1e3:.0f} kB at {r['bandwidth_GBps']:.0f} GB/s)"
        for r in res["rows"]) + " |")
    return "\n".join(out)


def main(argv=None) -> dict:
    a = _args(argv)
    if a.markdown:
        with open(a.json) as f:
            print(markdown(json.load(f)))
        return {}
    import torch
    torch.set_num_threads(1)
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": bench_runtime.machine()["cpu"], "tokens": a.tokens, "repeats": a.repeats,
           "rows": [parts(H, a) for H in a.hidden]}
    print(markdown(res))
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    print(f"\nwrote {a.json}")
    return res


if __name__ == "__main__":
    main()
