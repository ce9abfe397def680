"""Per-step latency at batch 1, one thread: leanrnn's CPU runtime against PyTorch and numpy peers.

Run: python benchmarks/bench_runtime.py [--hidden 256 1000 2048] [--input 64] [--json out.json]

For each hidden size, in one run: (a) torch.nn.LSTM fp32 stepped one time step at a time, (b) torch's
dynamic int8 LSTM stepped the same way, (c) an fp32 numpy (BLAS) LSTM step, and the runtime with fp32,
binary and ternary weights, each with 0% and 90% zero hidden states (the state fed to each step is
held at that sparsity). Prints medians, ratios, the bytes of weights each step reads, and the time a
pure stream of those bytes takes at the memory bandwidth measured in the same run.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from leanrnn.export import write_lrnn  # noqa: E402
from leanrnn.export.exporter import model_to_lrnn  # noqa: E402
from leanrnn.runtime import Model  # noqa: E402
from leanrnn.runtime.bench import time_steps  # noqa: E402
from leanrnn.tasks import LanguageModel  # noqa: E402


def bandwidth() -> float:
    """Bytes/s of reading a 256 MiB array (sum), median of 5."""
    a = np.ones(64 * 2**20, np.float32)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        a.sum()
        ts.append(time.perf_counter() - t0)
    return a.nbytes / float(np.median(ts))


def numpy_step(W_ih, W_hh, b, x, h, c):
    z = W_ih @ x + W_hh @ h + b
    H = h.shape[0]
    i, f = 1 / (1 + np.exp(-z[:H])), 1 / (1 + np.exp(-z[H:2 * H]))
    g, o = np.tanh(z[2 * H:3 * H]), 1 / (1 + np.exp(-z[3 * H:]))
    c = f * c + i * g
    return o * np.tanh(c), c


def runtime_model(X: int, H: int, weights: str, tmp: str) -> Model:
    torch.manual_seed(0)
    m = LanguageModel(16, H, embed_size=X, weights=weights, batch_norm=False).eval()
    header, tensors = model_to_lrnn(m, {"task": "char-lm"}, [str(i) for i in range(16)])
    header["layers"][0]["threshold"] = 0.0
    path = os.path.join(tmp, f"{weights}-{H}.lrnn")
    write_lrnn(path, header, tensors)
    return Model.load(path)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 1000, 2048])
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--json", default="benchmarks/bench_runtime.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    bw = bandwidth()
    X = args.input
    res = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
           "threads": 1, "batch": 1, "input": X, "read_bandwidth_GBps": bw / 1e9, "rows": []}
    print(f"read bandwidth {bw / 1e9:.1f} GB/s (one thread); batch 1; input {X}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for H in args.hidden:
            G = 4 * H
            rows = []
            lstm = torch.nn.LSTM(X, H).eval()
            xs = torch.randn(args.steps + 20, 1, 1, X)
            st = (torch.zeros(1, 1, H), torch.zeros(1, 1, H))
            with torch.inference_mode():
                ta = time_steps(lambda i: lstm(xs[i], st), args.steps)
            rows.append(("(a) torch nn.LSTM fp32", "-", ta, G * (X + H) * 4))
            try:
                q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lstm), {torch.nn.LSTM}, torch.qint8)[0]
                with torch.inference_mode():
                    tb = time_steps(lambda i: q(xs[i], st), args.steps)
                rows.append(("(b) torch dynamic int8", "-", tb, G * (X + H)))
            except Exception as e:  # pragma: no cover - quantization backends vary by build
                print(f"(b) torch dynamic int8 LSTM unavailable: {e}")
            W_ih, W_hh = lstm.weight_ih_l0.detach().numpy(), lstm.weight_hh_l0.detach().numpy()
            b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
            xn, h0, c0 = rng.standard_normal(X, np.float32), np.zeros(H, np.float32), np.zeros(H, np.float32)
            tc = time_steps(lambda i: numpy_step(W_ih, W_hh, b, xn, h0, c0), args.steps)
            rows.append(("(c) numpy fp32 (BLAS)", "-", tc, G * (X + H) * 4))
            for weights, nbytes in (("fp", 4), ("binary", 1), ("ternary", 1)):
                m = runtime_model(X, H, weights, tmp)
                for sp in (0.0, 0.9):
                    hs = rng.standard_normal((1, H)).astype(np.float32)
                    hs[0, rng.permutation(H)[: int(round(sp * H))]] = 0.0
                    state = m.initial_state(1)
                    ids = rng.integers(0, 16, args.steps + 20)

                    def step(i, m=m, state=state, hs=hs):
                        state.h[0] = hs
                        m._advance(m.embed[ids[i: i + 1]], state)
                    t = time_steps(step, args.steps)
                    nnz = H - int(round(sp * H))
                    rows.append((f"leanrnn {weights}", f"{sp:.0%}", t, G * (X + nnz) * nbytes))
            print(f"\nhidden {H}")
            print(f"{'implementation':<26}{'zeros':>6}{'us/step':>10}{'vs (a)':>9}{'vs (c)':>9}"
                  f"{'weight bytes':>14}{'stream us':>11}{'x bound':>9}")
            for name, sp, t, nb in rows:
                stream = nb / bw
                print(f"{name:<26}{sp:>6}{t * 1e6:>10.1f}{ta / t:>8.1f}x{tc / t:>8.1f}x{nb:>14,}"
                      f"{stream * 1e6:>11.1f}{t / stream:>8.1f}x")
                res["rows"].append({"hidden": H, "impl": name, "state_zeros": sp, "us_per_step": t * 1e6,
                                    "speedup_vs_torch_lstm": ta / t, "speedup_vs_numpy": tc / t,
                                    "weight_bytes_read": nb, "stream_us": stream * 1e6})
            packed = {"fp32": G * (X + H) * 4, "ternary 2-bit": G * (X + H) // 4, "binary 1-bit": G * (X + H) // 8}
            print("file bytes of the LSTM weights: " + ", ".join(f"{k} {v:,}" for k, v in packed.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"\nwrote {args.json}")
    return res


if __name__ == "__main__":
    main()
