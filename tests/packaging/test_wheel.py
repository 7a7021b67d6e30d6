"""The package as a user installs it: a wheel built from a clean copy of the tree, installed with its declared
dependencies (no extras) into a fresh venv, then ``urlvr --help`` and a 2-step tiny run with the configs the wheel
ships. Needs the package index (or uv's cache of it) and about 1.1 GB of disk for uv's cache.

The install goes through uv (requirements-dev.txt), which fetches and unpacks the wheels in parallel and links them
from its cache: 5.5 s with an empty cache (unconstrained) and 3.4 s with a warm one on the 2-core VM, where pip took
3 min 31 s. It is constrained to requirements.txt, so the test checks the declared dependencies at the pins they were
tested with, not whatever release of a range came out last. Without uv, or when uv fails, it falls back to pip."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from urlvr_jax.cli import COMMANDS
from urlvr_jax.utils.metrics_log import read_metrics

REPO = Path(__file__).resolve().parents[2]
# Not part of a source tree: what a checkout accumulates (git, venvs, build outputs, runs).
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "outputs", "*.egg-info", "__pycache__",
                                  ".hypothesis", ".pytest_cache", "*.pyc")


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def install(venv: Path, wheel: Path) -> None:
    """The wheel and its declared dependencies at requirements.txt's pins into ``venv``: through uv when it is
    installed (with pip's index settings, which uv does not read), else, or if uv cannot reach the index, through the
    venv's own pip."""
    pins = ["-c", REPO / "requirements.txt", wheel]
    try:
        from uv import find_uv_bin
    except ImportError:
        find_uv_bin = None
    if find_uv_bin is not None:
        env = dict(os.environ)
        for pip_name, uv_name in (("PIP_INDEX_URL", "UV_INDEX_URL"), ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL")):
            if pip_name in env:
                env.setdefault(uv_name, env[pip_name])
        done = subprocess.run([find_uv_bin(), "pip", "install", "-q", "--python", venv / "bin" / "python", *pins],
                              capture_output=True, text=True, env=env, timeout=1200)
        if done.returncode == 0:
            return
        print(f"uv failed, installing with pip instead:\n{done.stderr[-2000:]}")
    # Wheels wherever they exist; promise (a tensorflow-datasets requirement) has only a source release.
    run([venv / "bin" / "pip", "install", "-q", "--prefer-binary", *pins], timeout=1800)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel --no-deps`` of a copy of the tree (a build in the checkout would leave build/ behind, whose stale
    modules would go into later wheels)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=LEFT_OUT)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", source])
    (built,) = (root / "dist").glob("urlvr_jax-*.whl")
    return built


def test_wheel_holds_every_module_and_the_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "urlvr_jax").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules - names == set()  # (a sub-package without __init__.py would be missing)
    configs = {f"urlvr_jax/configs/{p.name}" for p in (REPO / "configs").glob("*.py")}
    assert "urlvr_jax/configs/tiny_gt.py" in configs and configs <= names
    targets = {p.relative_to(REPO).as_posix() for p in (REPO / "urlvr_jax" / "plan" / "gpu_targets").glob("*.txtpb")}
    assert targets and targets <= names  # package data read by plan mode


def test_installed_wheel_runs_help_and_a_tiny_run(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    install(venv, wheel)
    urlvr = venv / "bin" / "urlvr"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(JAX_PLATFORMS="cpu", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    usage = run([urlvr, "--help"], env=env, cwd=tmp_path).stdout
    assert all(f"  {name} " in usage for name in COMMANDS), usage
    run_dir = tmp_path / "run"  # (cwd outside the checkout: the config comes from the wheel)
    done = run([urlvr, "train", "--config", "tiny_gt", "train.steps=2", f"run_dir={run_dir}", "train.progress=false"],
               env=env, cwd=tmp_path, timeout=600)
    assert f"run {run_dir}: 2 steps" in done.stdout
    assert [r["step"] for r in read_metrics(run_dir) if "train/loss" in r] == [1, 2]
    # A GGUF model needs the gguf extra (torch, gguf), which this install leaves out: one line names it.
    model = tmp_path / "model.Q4_1.gguf"
    model.write_bytes(b"GGUF")
    refused = subprocess.run([urlvr, "train", "--config", "tiny_gt", "model.source=hf", f"model.path={model}",
                              f"run_dir={tmp_path / 'gguf_run'}"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert (refused.returncode, refused.stderr) == (1, f"error: {model}: reading a GGUF model needs torch and gguf, "
                                                       "which are not installed: pip install 'urlvr_jax[gguf]' (the "
                                                       "CPU torch of requirements.txt first)\n"), refused.stderr
    site = run([venv / "bin" / "python", "-c", "import urlvr_jax, sys; print(urlvr_jax.__file__)"], env=env,
               cwd=tmp_path).stdout
    assert str(venv) in site  # the installed copy ran, not the checkout
