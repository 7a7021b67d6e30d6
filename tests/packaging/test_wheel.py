"""The package as a user installs it: a wheel built from a clean copy of the tree, installed with its declared
dependencies (no extras) into a fresh venv, then ``urlvr --help`` and a 2-step tiny run with the configs the wheel
ships. Needs the package index (or pip's cache of it) and about 1.4 GB of disk for the venv."""

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

# slow: the install alone took 3 min 31 s (user 94 s) on the shared 2-core VM, and the whole file 13 min 10 s
# (build 29 s, venv + install + --help + the 2-step run 757 s) at a load of 10-15
pytestmark = pytest.mark.slow


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


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
    # Wheels wherever they exist; promise (a tensorflow-datasets requirement) has only a source release.
    run([venv / "bin" / "pip", "install", "-q", "--prefer-binary", wheel], timeout=1200)
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
    site = run([venv / "bin" / "python", "-c", "import urlvr_jax, sys; print(urlvr_jax.__file__)"], env=env,
               cwd=tmp_path).stdout
    assert str(venv) in site  # the installed copy ran, not the checkout
