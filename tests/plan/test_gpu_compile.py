"""Compile-only NVIDIA GPUs (urlvr_jax.plan.gpu): the devices of a topology name, the tiny config's sharded train step
compiled by XLA's GPU compiler, and a program too big for an H100 measured against the chip's memory.

The compile tests need `pip install -r requirements-gpu-plan.txt` (573 MB, ~14 s) and skip without it; the suite
sets JAX_PLATFORMS=cpu (tests/conftest.py), which the CUDA plugin needs on a machine without a GPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import SingleDeviceSharding

from urlvr_jax import sharding as shd
from urlvr_jax.plan import gpu
from urlvr_jax.plan.build import compile_program, model_config, train_inputs
from urlvr_jax.rl import setup
from urlvr_jax.rl.train_step import jit_train_step
from urlvr_jax.utils.config import load_config

needs_cuda_compiler = pytest.mark.skipif(
    not gpu._installed("jax_plugins.xla_cuda12"),
    reason=f"the GPU compiler is not installed: pip install -r {gpu.REQUIREMENTS}")


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
def test_tiny_train_step_compiles_for_h100():
    devices, chip = gpu.compile_devices("h100:8")
    config = load_config("tiny_gt")
    mesh = shd.make_mesh("data:2,fsdp:2,tensor:2", devices=devices)
    cfg = model_config(config)
    step_cfg, optimizer = setup.step_and_optimizer(config)
    state, batch = train_inputs(config, cfg, mesh, optimizer)
    program = compile_program("train_step", jit_train_step(cfg, step_cfg, optimizer, mesh, state, batch),
                              state, batch)
    assert program.argument > 0 and program.temp > 0 and program.alias > 0  # the donated state updates in place
    assert program.flops is None  # XLA's GPU compiler has no cost analysis
    assert 0 < program.peak < chip.hbm_bytes


@needs_cuda_compiler
def test_a_program_too_big_for_the_card_compiles_and_measures_over_80gb():
    """The GPU compiler does not refuse it (the TPU compiler would: RESOURCE_EXHAUSTED); the verdict is ours."""
    devices, chip = gpu.compile_devices("h100:8")
    x = jax.ShapeDtypeStruct((150_000,), jnp.float32, sharding=SingleDeviceSharding(devices[0]))
    program = compile_program("outer", jax.jit(lambda v: v[:, None] * v[None, :]), x)
    assert program.output == 150_000**2 * 4 > chip.hbm_bytes == 80 * 10**9  # 90 GB of output on one 80 GB card
