"""``leanrnn hw``: what a trained model gains on the accelerator, from its real state sparsity."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .config import Accel, Workload
from .model import analytic, simulate

# Weight bits on the accelerator's datapath for each weight mode of a model: full-precision ("fp")
# weights run as 16-bit fixed point there, never as fp32.
DATAPATH_WEIGHT_BITS = {"fp": 16, "binary": 1, "ternary": 2}


def model_workload(header: dict, steps: int) -> Workload:
    L = header["layers"]
    return Workload(input_size=int(L[0]["input_size"]), hidden_size=int(L[0]["hidden_size"]),
                    layers=len(L), steps=steps)


def record_masks(model, inputs) -> tuple[list[np.ndarray], np.ndarray]:
    """Run the runtime over ``inputs`` (one sequence) and return the per-layer ``(T, H)`` masks of the
    state fed into each step (row 0: the zero initial state) and the ``(T, X)`` input mask
    (``Model.trace_zero_masks``)."""
    return model.trace_zero_masks(np.asarray(inputs))


def default_accel(header: dict) -> Accel:
    mode = header["layers"][0]["weights"]
    return Accel(name=f"{mode} weights, sparse states", weight_bits=DATAPATH_WEIGHT_BITS[mode],
                 skip_zero_inputs=header["input"]["kind"] == "onehot")


def analyse(header: dict, masks: list[np.ndarray], input_mask: np.ndarray, accel: Accel | None = None) -> dict:
    a = accel or default_accel(header)
    wl = model_workload(header, masks[0].shape[0])
    dense_states = dataclasses.replace(a, name=a.name.replace("sparse", "dense") if "sparse" in a.name
                                       else a.name + " (dense states)", skip_zero_states=False)
    fp = dataclasses.replace(a, name="12-bit weights, sparse states", weight_bits=12)
    fp_dense = dataclasses.replace(fp, name="12-bit weights, dense states", skip_zero_states=False)
    runs = {c.name: simulate(c, wl, masks, input_mask) for c in (a, dense_states, fp, fp_dense)}
    base = runs[a.name]
    rows = []
    for r in runs.values():
        d = r.as_dict()
        d["speedup_of_model_config"] = r.cycles / base.cycles
        d["energy_gain_of_model_config"] = r.energy_per_step_pj / base.energy_per_step_pj
        rows.append(d)
    density = float(np.mean([m[1:].mean() for m in masks])) if masks[0].shape[0] > 1 else 1.0
    sweep = []
    for d in np.linspace(0.01, 1.0, 34):
        s, dn = analytic(a, wl, d, 1.0), analytic(dense_states, wl, 1.0, 1.0)
        sweep.append({"state_density": float(d), "speedup": dn.cycles / s.cycles,
                      "energy_gain": dn.energy_per_step_pj / s.energy_per_step_pj})
    return {"workload": dataclasses.asdict(wl), "accel": a.to_dict(), "measured_state_density": density,
            "configs": rows, "sweep": sweep,
            "weight_bytes_by_format": {f"{b}-bit" if b > 2 else {2: "ternary (2-bit)", 1: "binary (1-bit)"}[b]:
                                       wl.weight_count() * b / 8 for b in (32, 16, 12, 8, 2, 1)}}


def print_report(res: dict) -> None:
    wl = res["workload"]
    print(f"workload: {wl['layers']} layer(s), input {wl['input_size']}, hidden {wl['hidden_size']}, "
          f"{wl['steps']} steps; measured zero states {1 - res['measured_state_density']:.1%}")
    print(f"{'configuration':<34}{'cycles/step':>12}{'us/step':>9}{'GOPS':>8}{'nJ/step':>10}"
          f"{'weights KiB':>12}{'slower':>8}{'more energy':>12}")
    for r in res["configs"]:
        print(f"{r['accel']:<34}{r['cycles_per_step']:>12.0f}{r['latency_us']:>9.2f}{r['gops_dense_equivalent']:>8.1f}"
              f"{r['energy_nj_per_step']:>10.1f}{r['weight_bytes'] / 1024:>12.1f}{r['speedup_of_model_config']:>7.2f}x"
              f"{r['energy_gain_of_model_config']:>11.2f}x")
    b = res["configs"][0]["energy_breakdown_nj_per_step"]
    print("energy of the model's configuration per step: " + ", ".join(f"{k} {v:.1f} nJ" for k, v in b.items()))


def plot_report(res: dict, out_dir: str | Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    sw = res["sweep"]
    zeros = [100 * (1 - s["state_density"]) for s in sw]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(zeros, [s["speedup"] for s in sw], label="speedup")
    ax.plot(zeros, [s["energy_gain"] for s in sw], label="energy gain", ls="--")
    dense = next(r for r in res["configs"] if "dense" in r["accel"] and "12-bit" not in r["accel"])
    me = res["configs"][0]
    ax.scatter([100 * (1 - res["measured_state_density"])], [dense["cycles_per_step"] / me["cycles_per_step"]],
               color="k", zorder=3, label="trained model (trace)")
    ax.set(xlabel="zero hidden states (%)", ylabel="sparse vs dense states", title="gain of skipping zero states")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(out / "hw_sparsity.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    names = [r["accel"] for r in res["configs"]]
    parts = list(res["configs"][0]["energy_breakdown_nj_per_step"])
    bottom = np.zeros(len(names))
    for p in parts:
        v = np.array([r["energy_breakdown_nj_per_step"].get(p, 0.0) for r in res["configs"]])
        ax.bar(range(len(names)), v, bottom=bottom, label=p)
        bottom += v
    ax.set_xticks(range(len(names)), [n.replace(", ", "\n") for n in names], fontsize=8)
    ax.set(ylabel="nJ per step", title="energy per step by part")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "hw_energy.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    mem = res["weight_bytes_by_format"]
    ax.bar(list(mem), [v / 1024 for v in mem.values()])
    ax.set(ylabel="KiB", title="LSTM weight memory by format")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    paths.append(out / "hw_memory.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
