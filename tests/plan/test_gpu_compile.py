"""Compile-only NVIDIA GPUs (urlvr_jax.plan.gpu): the devices of a topology name, plan mode on h100:8 (the tiny config's
sharded programs compiled by XLA's GPU compiler), and a program too big for an H100 measured against its memory.

The compile tests need `pip install -r requirements-gpu-plan.txt` (573 MB, ~14 s) and skip without it; the suite
sets JAX_PLATFORMS=cpu (tests/conftest.py), which the CUDA plugin needs on a machine without a GPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import SingleDeviceSharding

from urlvr_jax.plan import gpu
from urlvr_jax.plan.build import compile_program

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

needs_cuda_compiler = pytest.mark.skipif(
    not gpu._installed("jax_plugins.xla_cuda12"),
    reason=f"the GPU compiler is not installed: pip install -r {gpu.REQUIREMENTS}")
# An entry another process wrote for the same compile-only program does not load back either: jax warns and compiles.
pytestmark = pytest.mark.filterwarnings("ignore:Error reading persistent compilation cache entry:UserWarning")


@pytest.fixture(autouse=True, scope="module")
def no_cache_writes():
    """Compile-only executables write into the suite's persistent cache but do not load back ("PjRtCompiler must be
    constructed with a Client to call DeserializeLoadedExecutable": a warning, then a compile): write none."""
    before = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1e9)
    yield
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before)


def test_topology_names():
    assert gpu.parse_topology("h100:8") == ("h100", 1, 8)
    assert gpu.parse_topology("H100:2x8") == ("h100", 2, 8)
    assert gpu.parse_topology("h200:4") == ("h200", 1, 4)
    for bad, cause in (("v100:8", "one of h100, h200, a100"), ("h100", "GPU:N"), ("h100:16", "1 to 8 GPUs"),
                       ("h100:0x8", "0 host")):
        with pytest.raises(ValueError, match=cause):
            gpu.parse_topology(bad)


def test_every_chip_has_its_target_config():
    for name, (_, chip) in gpu.GPUS.items():
        assert f'device_description_str: "{chip.name}"' in gpu.target_config(name)
        assert "collective_memory_granularity" not in gpu.target_config(name).split("proto-message")[1]


def test_missing_plugin_is_one_line_naming_the_requirements(monkeypatch):
    monkeypatch.setattr(gpu, "_installed", lambda module: False)
    with pytest.raises(ValueError, match=r"h100:8.*jax-cuda12-plugin.*pip install -r requirements-gpu-plan\.txt"):
        gpu.compile_devices("h100:8")


@needs_cuda_compiler
def test_devices_of_one_and_two_hosts():
    devices, chip = gpu.compile_devices("h100:8")
    assert len(devices) == 8 and {d.device_kind for d in devices} == {"NVIDIA H100 80GB HBM3"} == {chip.name}
    assert {d.process_index for d in devices} == {0}
    devices, _ = gpu.compile_devices("h100:2x8")
    assert [d.process_index for d in devices] == [0] * 8 + [1] * 8
    devices, chip = gpu.compile_devices("h200:8")
    assert devices[0].device_kind == chip.name == "NVIDIA H200 141GB HBM3e" and chip.hbm_bytes == 141 * 10**9


@needs_cuda_compiler
def test_plan_cli_compiles_the_tiny_config_for_h100():
    """The way a user runs it: ``python -m urlvr_jax.plan --topology h100:8`` compiles the tiny config's sharded train
    step, rollout and log-prob programs with the GPU compiler and gives the verdict against 80 GB (~100 s here, most
    of it the train step's compile; the CPU compiler takes as long for it on this machine)."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR")}
    out = subprocess.run([sys.executable, "-m", "urlvr_jax.plan", "--config", "tiny_gt", "--topology", "h100:8",
                          "mesh=data:2,fsdp:2,tensor:2"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    row = re.search(r"^  train_step" + r"\s+([\d.]+) [KMG]iB" * 4 + r".*\sn/a\s", out.stdout, re.M)
    argument, output, aliased, temp = map(float, row.groups())  # no cost analysis on GPU: no XLA GFLOP
    assert argument > 0 and aliased > 0 and temp > 0  # the donated state is updated in place
    assert "budget 76293.945 MiB per device" in out.stdout  # 80 GB (the datasheet's) in MiB
    assert "verdict: FITS" in out.stdout and "roofline on NVIDIA H100 80GB HBM3" in out.stdout


@needs_cuda_compiler
def test_a_program_too_big_for_the_card_compiles_and_measures_over_80gb():
    """The GPU compiler does not refuse it (the TPU compiler would: RESOURCE_EXHAUSTED); the verdict is ours."""
    devices, chip = gpu.compile_devices("h100:8")
    x = jax.ShapeDtypeStruct((150_000,), jnp.float32, sharding=SingleDeviceSharding(devices[0]))
    program = compile_program("outer", jax.jit(lambda v: v[:, None] * v[None, :]), x)
    assert program.output == 150_000**2 * 4 > chip.hbm_bytes == 80 * 10**9  # 90 GB of output on one 80 GB card
