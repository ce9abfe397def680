"""Packaging: the core install (no extras) runs exported models without torch, the extras in
pyproject.toml are the ones ``leanrnn._extras`` names, and a missing extra is one line naming it."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

from leanrnn._extras import MODULES, install_hint, missing_extra

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("train", "hw", "rtl", "bench")
# pip's words when no package index (and no cached wheel) can be reached
OFFLINE = re.compile(r"NewConnectionError|Network is unreachable|Temporary failure in name resolution|"
                     r"Name or service not known|Max retries exceeded|ProxyError")


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+(\[[^\]]*\])?", r).group(0).lower() for r in requirements}


def _extra(project: dict, extra: str) -> set[str]:
    """Distributions an extra installs, its ``leanrnn[...]`` references followed."""
    out = set()
    for name in _names(project["optional-dependencies"][extra]):
        if name.startswith("leanrnn["):
            for e in name[len("leanrnn["):-1].split(","):
                out |= _extra(project, e.strip())
        else:
            out.add(name.split("[")[0])
    return out


def test_core_install_is_the_runtime_and_extras_install_what_leanrnn_extras_names():
    project = _pyproject()
    core = {n.split("[")[0] for n in _names(project["dependencies"])}
    assert core == {"numpy", "numba", "safetensors"}
    for module, (dist, extras) in MODULES.items():
        assert dist not in core, f"{dist} ({module}) is optional, not a core dependency"
        for extra in extras:
            assert dist in _extra(project, extra), f"leanrnn[{extra}] must install {dist} ({module})"
    assert "torch" in _extra(project, "train") and "amaranth" in _extra(project, "rtl")
    every = set().union(*(_extra(project, e) for e in EXTRAS))
    assert _extra(project, "all") == every
    assert _extra(project, "test") >= every | {"pytest", "hypothesis", "ruff"}


def test_missing_extra_names_only_optional_modules():
    torch = ModuleNotFoundError("No module named 'torch'", name="torch")
    assert missing_extra(torch) == ("torch", "train")
    assert missing_extra(ModuleNotFoundError(name="torch.nn")) == ("torch", "train")
    assert missing_extra(ModuleNotFoundError(name="yaml"), prefer="hw") == ("pyyaml", "hw")
    assert missing_extra(ModuleNotFoundError(name="yaml"), prefer="deploy") == ("pyyaml", "train")
    assert missing_extra(ModuleNotFoundError(name="leanrnn.nope")) is None  # a bug, not an install
    assert missing_extra(ModuleNotFoundError(name=None)) is None
    assert install_hint(torch) == "this command needs torch; install it with: pip install 'leanrnn[train]'"


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A small ternary, batch-normalized, state-pruned char-LM as a .lrnn file, and its torch outputs."""
    import torch

    from leanrnn.export import write_lrnn
    from leanrnn.export.exporter import model_to_lrnn
    from leanrnn.tasks import LanguageModel
    torch.manual_seed(0)
    model = LanguageModel(12, 16, embed_size=8, weights="ternary", batch_norm=True, state_sparsity=0.5)
    model.train()
    with torch.no_grad():  # batch-norm statistics and pruning thresholds off their initial values
        model(torch.randint(0, 12, (9, 4)))
    model.eval()
    ids = torch.randint(0, 12, (10, 2), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(ids)[0].numpy()
    path = tmp_path_factory.mktemp("model") / "model.lrnn"
    write_lrnn(path, *model_to_lrnn(model, {"task": "char-lm"}, [chr(97 + i) for i in range(12)]))
    return path, ids.numpy(), ref


# Runs the CLI with some modules made unimportable, as if their extras were not installed.
WITHOUT = "import sys\nfor m in sys.argv[1].split(','): sys.modules[m] = None\n" \
          "from leanrnn.cli import main\nsys.exit(main(sys.argv[2:]))"


def _cli_without(modules, *argv, cwd):
    return subprocess.run([sys.executable, "-c", WITHOUT, ",".join(modules), *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.mark.parametrize("blocked, argv, extra", [
    (MODULES, ["train", "--out", "run"], "train"),
    (MODULES, ["demo"], "train"),
    (MODULES, ["rtl", "generate", "-o", "out"], "rtl"),
    (["yaml"], ["hw", "{model}", "--config", "accel.yaml"], "hw"),
    (["torch"], ["export", "{run}", "-o", "m.lrnn"], "train"),
])
def test_a_command_without_its_extra_says_which_to_install(lm, tmp_path, blocked, argv, extra):
    (tmp_path / "accel.yaml").write_text("pes: 16\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.pt").write_bytes(b"PK\x03\x04")
    argv = [a.format(model=lm[0], run=tmp_path / "run") for a in argv]
    r = _cli_without(blocked, *argv, cwd=tmp_path)
    dist = {"train": "torch", "rtl": "amaranth", "hw": "pyyaml"}[extra]
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"leanrnn: error: this command needs {dist}; install it with: pip install 'leanrnn[{extra}]'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accel.yaml", "run"]  # nothing written


def test_model_commands_run_without_any_extra(lm, tmp_path):
    r = _cli_without(MODULES, "inspect", str(lm[0]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "LSTM weight matrices" in r.stdout and "layer 0: 8 -> 16, weights ternary" in r.stdout
    r = _cli_without(MODULES, "--help", cwd=tmp_path)
    assert r.returncode == 0 and "inspect" in r.stdout


CHILD = """
import importlib.util, json, sys
import numpy as np
import leanrnn
from leanrnn.runtime import Model
out, _ = Model.load(sys.argv[1]).run(np.load(sys.argv[2]))
np.save(sys.argv[3], out)
print(json.dumps({"leanrnn": leanrnn.__file__, "torch_loaded": "torch" in sys.modules,
                  "optional": [m for m in sys.argv[4].split(",") if importlib.util.find_spec(m) is not None]}))
"""


def _wheel(tmp: Path) -> Path:
    """A wheel of the working tree, built from a copy (nothing is written into the checkout)."""
    src = tmp / "tree"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    offline = ["--no-index", "--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *offline, "-w", str(tmp / "dist"),
                        str(src)], capture_output=True, text=True, timeout=300)
    if r.returncode and OFFLINE.search(r.stdout + r.stderr):
        pytest.skip("building the wheel needs setuptools from a package index, and none is reachable "
                    f"({' '.join(r.stderr.split())[-300:]})")
    assert r.returncode == 0, r.stdout + r.stderr
    return next((tmp / "dist").glob("leanrnn-*.whl"))


@pytest.mark.network
def test_core_install_runs_an_exported_model_without_torch(lm, tmp_path):
    path, ids, ref = lm
    wheel = _wheel(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--retries", "1", "--timeout", "30", str(wheel)],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode and OFFLINE.search(r.stdout + r.stderr):
        pytest.skip("the core install needs numpy, numba and safetensors from a package index or pip's cache, and "
                    f"neither is reachable ({' '.join(r.stderr.split())[-300:]})")
    assert r.returncode == 0, r.stdout + r.stderr

    np.save(tmp_path / "ids.npy", ids)
    r = subprocess.run([str(py), "-c", CHILD, str(path), str(tmp_path / "ids.npy"), str(tmp_path / "out.npy"),
                        ",".join(MODULES)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout.splitlines()[-1])
    assert Path(facts["leanrnn"]).is_relative_to(env_dir)  # the installed wheel, not the checkout
    assert not facts["torch_loaded"] and facts["optional"] == []  # no extra came with the core install
    assert np.allclose(np.load(tmp_path / "out.npy"), ref, rtol=1e-4, atol=1e-5)

    cli = [str(bindir / "leanrnn")]
    r = subprocess.run(cli + ["inspect", str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "LSTM weight matrices" in r.stdout, r.stderr
    r = subprocess.run(cli + ["bench", str(path), "--steps", "5"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    r = subprocess.run(cli + ["train", "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr == "leanrnn: error: this command needs torch; install it with: pip install 'leanrnn[train]'\n"
